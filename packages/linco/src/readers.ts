/**
 * Readers for judgment cases: CAIL2018 JSON lines as published, FairLex's CAIL subset, and
 * CSV. A malformed value (a term that is not a number, a charge that is not a string) raises
 * a CaseFormatError naming the source, the line and the field, because a fairness metric
 * silently computed over half-parsed data is worse than none. A record that is well formed
 * but unusable (no charge, no term, several defendants) is excluded and counted by reason in
 * the read report, never dropped silently.
 */
import { readFileSync } from 'node:fs';
import { extractDefendants } from './attributes.js';
import { provinceByName } from './places.js';
import type { JudgmentCase, Term } from './types.js';

export class CaseFormatError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly field: string,
    detail: string,
  ) {
    super(`${source}: line ${line}, field ${field}: ${detail}`);
    this.name = 'CaseFormatError';
  }
}

export interface ReadOptions {
  /** Name used in error messages and the report (a path, or 'input'). */
  source?: string;
  /**
   * Group attributes to read from the metadata: attribute name → field path (dot-separated)
   * looked up in the record, then in `meta`, then in `attributes`. Default: region, gender
   * (with FairLex's court_region and defendant_gender as further places to look).
   */
  groupFields?: Record<string, string>;
  /** Attributes every record must have in its metadata (error if missing). Default none. */
  requireGroups?: string[];
  /**
   * Cases with more than one defendant. CAIL2018's tasks are defined for one defendant (one
   * sentence per case), so by default they are excluded and counted ('exclude'); 'keep'
   * keeps them with the case's recorded sentence and the first defendant's attributes.
   */
  multiDefendant?: 'exclude' | 'keep';
}

export interface ReadReport {
  source: string;
  /** The formats met: 'cail2018' (fact + meta), 'fairlex' (text + label + attributes), 'csv'. */
  formats: ('cail2018' | 'fairlex' | 'csv')[];
  /** Records read (blank lines aside). */
  records: number;
  /** Cases kept. */
  kept: number;
  /** Records left out, by reason, with their first line numbers. */
  excluded: Record<string, { count: number; lines: number[] }>;
  /** Whether the data names charges (FairLex's CAIL subset does not). */
  chargesRecorded: boolean;
}

export interface ReadResult {
  cases: JudgmentCase[];
  report: ReadReport;
}

/** A reason for leaving a record out, e.g. 'several defendants'. */
export type ExclusionReason = 'several defendants' | 'no charge' | 'no term of imprisonment' | 'no fact';

/** The placeholder charge of a data set that records none (FairLex's CAIL subset). */
export const UNRECORDED_CHARGE = '(charge not recorded)';

/** FairLex's CAIL term classes (months), in label order. */
export const FAIRLEX_TERM_CLASSES = ['0', '<=12', '<=36', '<=60', '<=120', '>120'] as const;
/**
 * The month value a FairLex term class stands for: the midpoint of its range on the
 * ln(1 + months) scale LInCo measures terms on (1–12 → 4.1, 13–36 → 20.9, 37–60 → 46.5,
 * 61–120 → 84.9, 121–180 → 147.0; 0 stays 0). Judges that pick the same class agree exactly.
 */
export const FAIRLEX_TERM_MONTHS: readonly number[] = [0, Math.sqrt(2 * 13) - 1, Math.sqrt(13 * 37) - 1, Math.sqrt(37 * 61) - 1, Math.sqrt(61 * 121) - 1, Math.sqrt(121 * 181) - 1];
/** FairLex's class names for its two attributes. */
export const FAIRLEX_GENDERS = ['male', 'female'] as const;
export const FAIRLEX_REGIONS = ['Beijing', 'Liaoning', 'Hunan', 'Guangdong', 'Sichuan', 'Guangxi', 'Zhejiang'] as const;

const DEFAULT_GROUP_FIELDS: Record<string, string[]> = {
  region: ['region', 'court_region'],
  gender: ['gender', 'defendant_gender'],
};

export function lookupField(record: Record<string, unknown>, path: string): unknown {
  let cur: unknown = record;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function describe(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A number, or a numeric string ("12", " 12 "); undefined for anything else. */
function numeric(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

/** true/false, "true"/"false", 1/0. */
function flag(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === '1' || v === 'true' || v === 'True') return true;
  if (v === 0 || v === '0' || v === 'false' || v === 'False') return false;
  return undefined;
}

/** 'male' / 'female' from the forms data sets use (M, F, 男, 女, FairLex's class index). */
export function normalizeGender(v: unknown): string | undefined {
  if (v === 0 || v === '0') return 'male';
  if (v === 1 || v === '1') return 'female';
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  if (['m', 'male', '男', '男性'].includes(s)) return 'male';
  if (['f', 'female', '女', '女性'].includes(s)) return 'female';
  return s === '' ? undefined : v.trim();
}

/** A province's English name from FairLex's class index or a name in English or Chinese. */
export function normalizeRegion(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return FAIRLEX_REGIONS[v];
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return FAIRLEX_REGIONS[Number(v.trim())];
  return provinceByName(v.replace(/(省|市|自治区|壮族自治区|回族自治区|维吾尔自治区)$/, ''))?.en ?? v.trim();
}

function groupValue(name: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (name === 'gender') return normalizeGender(v);
  if (name === 'region') return normalizeRegion(v);
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

interface Collector {
  source: string;
  report: ReadReport;
  exclude(line: number, reason: ExclusionReason): void;
}

function collector(source: string): Collector {
  const report: ReadReport = { source, formats: [], records: 0, kept: 0, excluded: {}, chargesRecorded: true };
  return {
    source,
    report,
    exclude(line, reason) {
      const e = report.excluded[reason] ?? { count: 0, lines: [] };
      report.excluded[reason] = e;
      e.count++;
      if (e.lines.length < 20) e.lines.push(line);
    },
  };
}

function noteFormat(report: ReadReport, format: ReadReport['formats'][number]): void {
  if (!report.formats.includes(format)) report.formats.push(format);
}

/** Metadata group attributes of a record (record, then meta, then attributes). */
function readGroups(rec: Record<string, unknown>, options: ReadOptions, fail: (field: string, detail: string) => never): Record<string, string> {
  const fields: Record<string, string[]> = options.groupFields
    ? Object.fromEntries(Object.entries(options.groupFields).map(([k, v]) => [k, [v]]))
    : DEFAULT_GROUP_FIELDS;
  const groups: Record<string, string> = {};
  for (const [name, paths] of Object.entries(fields)) {
    let raw: unknown;
    let where = paths[0]!;
    for (const path of paths) {
      for (const base of [rec, rec['meta'], rec['attributes']]) {
        if (!isObject(base)) continue;
        const v = lookupField(base, path);
        if (v !== undefined && v !== null) {
          raw = v;
          where = path;
          break;
        }
      }
      if (raw !== undefined) break;
    }
    if (raw !== undefined && typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      fail(where, `expected a string or number, got ${describe(raw)}`);
    }
    const value = groupValue(name, raw);
    if (value === undefined) {
      if (options.requireGroups?.includes(name)) fail(where, `group attribute "${name}" is required`);
      continue;
    }
    groups[name] = value;
  }
  return groups;
}

function readYear(rec: Record<string, unknown>, fail: (field: string, detail: string) => never): number | undefined {
  const m = rec['meta'];
  const y = rec['year'] ?? (isObject(m) ? m['year'] : undefined);
  if (y === undefined || y === null) return undefined;
  const n = numeric(y);
  if (n === undefined || !Number.isInteger(n)) fail('year', `expected an integer year, got ${describe(y)}`);
  return n;
}

/** One CAIL2018 record (fact + meta). Returns a case, or the reason to exclude it. */
function cailCase(rec: Record<string, unknown>, line: number, options: ReadOptions, fail: (field: string, detail: string) => never): JudgmentCase | ExclusionReason {
  const fact = rec['fact'];
  if (fact === undefined || fact === null) return 'no fact';
  if (typeof fact !== 'string') fail('fact', `expected a string, got ${describe(fact)}`);
  if ((fact as string).trim() === '') return 'no fact';
  const meta = rec['meta'];
  if (meta !== undefined && !isObject(meta)) fail('meta', `expected an object, got ${describe(meta)}`);
  const m = (meta ?? {}) as Record<string, unknown>;

  const accusation = m['accusation'];
  if (accusation === undefined || accusation === null) return 'no charge';
  if (!Array.isArray(accusation) || accusation.some((a) => typeof a !== 'string')) {
    fail('meta.accusation', `expected an array of charge names, got ${describe(accusation)}`);
  }
  const charges = [...new Set((accusation as string[]).map((a) => a.trim()).filter((a) => a !== ''))];
  if (charges.length === 0) return 'no charge';

  const articlesRaw = m['relevant_articles'] ?? [];
  if (!Array.isArray(articlesRaw)) fail('meta.relevant_articles', `expected an array, got ${describe(articlesRaw)}`);
  const articles = [
    ...new Set(
      (articlesRaw as unknown[]).map((a, j) => {
        // 133, "133", and the forms "133之一" / "第133条" (the base article, as CAIL numbers them).
        const n = typeof a === 'number' ? a : typeof a === 'string' ? Number(/\d+/.exec(a.normalize('NFKC'))?.[0]) : Number.NaN;
        if (!Number.isInteger(n) || n <= 0) fail(`meta.relevant_articles[${j}]`, `expected a positive integer article number, got ${describe(a)}`);
        return n;
      }),
    ),
  ];

  const toi = m['term_of_imprisonment'];
  if (toi === undefined || toi === null) return 'no term of imprisonment';
  if (!isObject(toi)) fail('meta.term_of_imprisonment', `expected an object, got ${describe(toi)}`);
  const t = toi as Record<string, unknown>;
  const readFlag = (name: string): boolean => {
    const v = t[name];
    if (v === undefined || v === null) return false;
    const b = flag(v);
    if (b === undefined) fail(`meta.term_of_imprisonment.${name}`, `expected true or false, got ${describe(v)}`);
    return b as boolean;
  };
  let death = readFlag('death_penalty');
  let life = readFlag('life_imprisonment');
  const rawMonths = t['imprisonment'];
  let months = numeric(rawMonths);
  if (months === undefined) {
    if (!death && !life) {
      if (rawMonths === undefined || rawMonths === null) return 'no term of imprisonment';
      fail('meta.term_of_imprisonment.imprisonment', `expected a non-negative number of months, got ${describe(rawMonths)}`);
    }
    months = 0;
  }
  if ((months as number) < 0) {
    // Some CAIL derivatives write life as −1 and death as −2 months.
    if (!death && !life && months === -1) life = true;
    else if (!death && !life && months === -2) death = true;
    else if (!death && !life) fail('meta.term_of_imprisonment.imprisonment', `expected a non-negative number of months, got ${describe(rawMonths)}`);
    months = 0;
  }
  const term: Term = { months: death || life ? 0 : (months as number), life: life && !death, death };

  const criminals = m['criminals'];
  let defendants: string[] | undefined;
  if (criminals !== undefined && criminals !== null) {
    if (!Array.isArray(criminals) || criminals.some((x) => typeof x !== 'string')) fail('meta.criminals', `expected an array of names, got ${describe(criminals)}`);
    defendants = [...new Set((criminals as string[]).map((x) => x.trim()).filter((x) => x !== ''))];
  }
  const several = defendants && defendants.length > 0 ? defendants.length > 1 : extractDefendants(fact as string).several;
  if (several && (options.multiDefendant ?? 'exclude') === 'exclude') return 'several defendants';

  const fineRaw = m['punish_of_money'];
  const fine = fineRaw === undefined || fineRaw === null ? undefined : numeric(fineRaw);
  if (fineRaw !== undefined && fineRaw !== null && (fine === undefined || fine < 0)) fail('meta.punish_of_money', `expected a non-negative amount, got ${describe(fineRaw)}`);

  const c: JudgmentCase = { id: String(rec['id'] ?? line), fact: fact as string, charges, articles, term, groups: readGroups(rec, options, fail), record: rec };
  const year = readYear(rec, fail);
  if (year !== undefined) c.year = year;
  if (defendants && defendants.length > 0) c.defendants = defendants;
  if (fine !== undefined) c.fine = fine;
  return c;
}

/** One FairLex CAIL record (text + label + attributes). */
function fairlexCase(rec: Record<string, unknown>, line: number, options: ReadOptions, fail: (field: string, detail: string) => never): JudgmentCase | ExclusionReason {
  const raw = rec['text'];
  // The published files hold the text as a list of paragraphs; the Hugging Face loader joins them.
  if (!(typeof raw === 'string' || (Array.isArray(raw) && raw.every((p) => typeof p === 'string')))) fail('text', `expected a string or a list of strings, got ${describe(raw)}`);
  const fact = typeof raw === 'string' ? raw : (raw as string[]).join('\n');
  if (fact.trim() === '') return 'no fact';
  let months: number | undefined;
  if (rec['term'] !== undefined && rec['term'] !== null) {
    months = numeric(rec['term']);
    if (months === undefined || months < 0) fail('term', `expected a non-negative number of months, got ${describe(rec['term'])}`);
  } else {
    const label = rec['label'];
    if (label === undefined || label === null) return 'no term of imprisonment';
    const k = typeof label === 'number' ? label : FAIRLEX_TERM_CLASSES.indexOf(String(label).trim() as (typeof FAIRLEX_TERM_CLASSES)[number]);
    if (!Number.isInteger(k) || k < 0 || k >= FAIRLEX_TERM_MONTHS.length) {
      fail('label', `expected a FairLex term class (0–5 or one of ${FAIRLEX_TERM_CLASSES.join(', ')}), got ${describe(label)}`);
    }
    months = FAIRLEX_TERM_MONTHS[k]!;
  }
  const crime = rec['crime'];
  const charges = typeof crime === 'string' && crime.trim() !== '' && crime !== 'None' ? [crime.trim()] : [UNRECORDED_CHARGE];
  const c: JudgmentCase = { id: String(rec['id'] ?? line), fact, charges, articles: [], term: { months: months as number, life: false, death: false }, groups: readGroups(rec, options, fail), record: rec };
  const year = readYear(rec, fail);
  if (year !== undefined) c.year = year;
  return c;
}

/**
 * Parses JSON lines of CAIL2018 records (`fact`, `meta.accusation`, `meta.relevant_articles`,
 * `meta.term_of_imprisonment.{imprisonment, life_imprisonment, death_penalty}`,
 * `meta.criminals`, `meta.punish_of_money`) or FairLex CAIL records (`text`, `label`,
 * `defendant_gender`, `court_region`, flat or under `attributes`), told apart per record.
 * Blank lines are skipped; line numbers are 1-based.
 */
export function parseCasesJsonl(text: string, options: ReadOptions = {}): ReadResult {
  const col = collector(options.source ?? 'input');
  const cases: JudgmentCase[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const line = i + 1;
    const fail = (field: string, detail: string): never => {
      throw new CaseFormatError(col.source, line, field, detail);
    };
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (err) {
      fail('(record)', `not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(record)) fail('(record)', 'expected a JSON object');
    const rec = record as Record<string, unknown>;
    col.report.records++;
    // A CAIL2018 record has fact and meta; a FairLex record has text, label and attributes.
    const fairlex = rec['fact'] === undefined && rec['text'] !== undefined;
    noteFormat(col.report, fairlex ? 'fairlex' : 'cail2018');
    const c = fairlex ? fairlexCase(rec, line, options, fail) : cailCase(rec, line, options, fail);
    if (typeof c === 'string') col.exclude(line, c);
    else cases.push(c);
  }
  col.report.kept = cases.length;
  col.report.chargesRecorded = cases.some((c) => c.charges[0] !== UNRECORDED_CHARGE);
  return { cases, report: col.report };
}

/** Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, newlines in quotes). */
export function parseCsvRecords(text: string, source = 'input'): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && !fieldStarted) {
      inQuotes = true;
      fieldStarted = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      if (!(fields.length === 1 && fields[0] === '')) out.push({ line: recordLine, fields });
      fields = [];
      field = '';
      fieldStarted = false;
      line++;
      recordLine = line;
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (inQuotes) throw new CaseFormatError(source, recordLine, '(record)', 'unterminated quoted field');
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    out.push({ line: recordLine, fields });
  }
  return out;
}

/**
 * Parses CSV with a header row. Columns: `fact`, `charges` (';'-separated), `articles`
 * (';'-separated, optional), `term_months`, `life` and `death` (true/false/1/0, optional),
 * `year` (optional); every other column is read as a group attribute.
 */
export function parseCasesCsv(text: string, options: ReadOptions = {}): ReadResult {
  const col = collector(options.source ?? 'input');
  noteFormat(col.report, 'csv');
  const source = col.source;
  const records = parseCsvRecords(text.replace(/^\uFEFF/, ''), source);
  const header = records[0];
  if (!header) throw new CaseFormatError(source, 1, '(header)', 'empty file: expected a header row');
  const names = header.fields.map((f) => f.trim());
  for (const required of ['fact', 'charges', 'term_months']) {
    if (!names.includes(required)) throw new CaseFormatError(source, header.line, required, 'column missing from the header');
  }
  const known = new Set(['id', 'fact', 'charges', 'articles', 'term_months', 'life', 'death', 'year']);
  const cases: JudgmentCase[] = [];
  for (const { line, fields } of records.slice(1)) {
    col.report.records++;
    const fail = (field: string, detail: string): never => {
      throw new CaseFormatError(source, line, field, detail);
    };
    if (fields.length !== names.length) fail('(record)', `expected ${names.length} columns, got ${fields.length}`);
    const row: Record<string, string> = {};
    names.forEach((n, j) => {
      row[n] = fields[j]!.trim();
    });
    const fact = row['fact']!;
    if (fact === '') {
      col.exclude(line, 'no fact');
      continue;
    }
    // All charges are kept (a case may have several); repeats are dropped: a conviction is a set.
    const charges = [...new Set(row['charges']!.split(';').map((s) => s.trim()).filter((s) => s !== ''))];
    if (charges.length === 0) {
      col.exclude(line, 'no charge');
      continue;
    }
    const articles = (row['articles'] ?? '').split(';').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n <= 0) fail('articles', `expected positive integer article numbers, got ${JSON.stringify(s)}`);
      return n;
    });
    const bool = (name: string): boolean => {
      const v = (row[name] ?? '').toLowerCase();
      if (v === '' || v === 'false' || v === '0') return false;
      if (v === 'true' || v === '1') return true;
      return fail(name, `expected true/false/1/0, got ${JSON.stringify(row[name])}`);
    };
    const life = bool('life');
    const death = bool('death');
    const months = Number(row['term_months']);
    if (row['term_months'] === '' && !life && !death) {
      col.exclude(line, 'no term of imprisonment');
      continue;
    }
    if (row['term_months'] !== '' && (!Number.isFinite(months) || months < 0)) {
      fail('term_months', `expected a non-negative number of months, got ${JSON.stringify(row['term_months'])}`);
    }
    const groups: Record<string, string> = {};
    for (const n of names) {
      if (known.has(n) || row[n] === '') continue;
      const v = groupValue(n, row[n]);
      if (v !== undefined) groups[n] = v;
    }
    for (const g of options.requireGroups ?? []) if (groups[g] === undefined) fail(g, `group attribute "${g}" is required`);
    const c: JudgmentCase = {
      id: row['id'] || String(line),
      fact,
      charges,
      articles,
      term: { months: life || death || row['term_months'] === '' ? 0 : months, life: life && !death, death },
      groups,
      record: row,
    };
    if (row['year']) {
      const y = Number(row['year']);
      if (!Number.isInteger(y)) fail('year', `expected an integer year, got ${JSON.stringify(row['year'])}`);
      c.year = y;
    }
    cases.push(c);
  }
  col.report.kept = cases.length;
  return { cases, report: col.report };
}

/** Reads a `.jsonl`/`.json` (CAIL2018 or FairLex) or `.csv` file by its extension. */
export function readCases(path: string, options: Omit<ReadOptions, 'source'> = {}): ReadResult {
  if (/\.csv$/i.test(path)) return parseCasesCsv(readFileSync(path, 'utf8'), { ...options, source: path });
  if (/\.jsonl?$/i.test(path)) return parseCasesJsonl(readFileSync(path, 'utf8'), { ...options, source: path });
  throw new Error(`readCases: ${path}: unknown extension (expected .jsonl, .json or .csv)`);
}

/** One line per exclusion reason: "several defendants: 3 (lines 4, 9, 17)". */
export function describeExclusions(report: ReadReport): string[] {
  return Object.entries(report.excluded).map(
    ([reason, e]) => `${reason}: ${e.count} (line${e.lines.length > 1 ? 's' : ''} ${e.lines.join(', ')}${e.count > e.lines.length ? ', …' : ''})`,
  );
}

/** Serializes cases as CAIL2018 JSON lines (group attributes and year at the top level). */
export function toCailJsonl(cases: JudgmentCase[]): string {
  return cases
    .map((c) =>
      JSON.stringify({
        id: c.id,
        fact: c.fact,
        meta: {
          accusation: c.charges,
          relevant_articles: c.articles,
          term_of_imprisonment: { death_penalty: c.term.death, life_imprisonment: c.term.life, imprisonment: c.term.months },
          ...(c.defendants ? { criminals: c.defendants } : {}),
          ...(c.fine !== undefined ? { punish_of_money: c.fine } : {}),
        },
        ...c.groups,
        ...(c.year !== undefined ? { year: c.year } : {}),
      }),
    )
    .join('\n')
    .concat('\n');
}
