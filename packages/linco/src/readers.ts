/**
 * Readers for CAIL2018-style JSON lines and for CSV. Every bad record raises a
 * CaseFormatError naming the source, the line and the field, because a fairness metric
 * silently computed over half-parsed data is worse than none.
 */
import { readFileSync } from 'node:fs';
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
  /** Name used in error messages (a path, or 'input'). */
  source?: string;
  /**
   * Group attributes to read: attribute name → field path (dot-separated) looked up in the
   * record, then in `meta`. Default: region, gender.
   */
  groupFields?: Record<string, string>;
  /** Attributes every record must have (error if missing). Default none. */
  requireGroups?: string[];
}

const DEFAULT_GROUP_FIELDS: Record<string, string> = { region: 'region', gender: 'gender' };

function lookup(record: Record<string, unknown>, path: string): unknown {
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

/** Parses CAIL2018 JSON lines text. Blank lines are skipped; line numbers are 1-based. */
export function parseCailJsonl(text: string, options: ReadOptions = {}): JudgmentCase[] {
  const source = options.source ?? 'input';
  const groupFields = options.groupFields ?? DEFAULT_GROUP_FIELDS;
  const cases: JudgmentCase[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const line = i + 1;
    const fail = (field: string, detail: string): never => {
      throw new CaseFormatError(source, line, field, detail);
    };
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (err) {
      fail('(record)', `not valid JSON (${(err as Error).message})`);
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) fail('(record)', 'expected a JSON object');
    const rec = record as Record<string, unknown>;
    const fact = rec['fact'];
    if (typeof fact !== 'string' || fact.trim() === '') fail('fact', `expected a non-empty string, got ${describe(fact)}`);
    const meta = rec['meta'];
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) fail('meta', `expected an object, got ${describe(meta)}`);
    const m = meta as Record<string, unknown>;
    const accusation = m['accusation'];
    if (!Array.isArray(accusation) || accusation.length === 0 || accusation.some((a) => typeof a !== 'string' || a === '')) {
      fail('meta.accusation', `expected a non-empty array of charge names, got ${describe(accusation)}`);
    }
    const articlesRaw = m['relevant_articles'] ?? [];
    if (!Array.isArray(articlesRaw)) fail('meta.relevant_articles', `expected an array, got ${describe(articlesRaw)}`);
    const articles = (articlesRaw as unknown[]).map((a, j) => {
      const n = typeof a === 'string' ? Number(a) : a;
      if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) {
        fail(`meta.relevant_articles[${j}]`, `expected a positive integer article number, got ${describe(a)}`);
      }
      return n as number;
    });
    const toi = m['term_of_imprisonment'];
    if (toi === null || typeof toi !== 'object') fail('meta.term_of_imprisonment', `expected an object, got ${describe(toi)}`);
    const t = toi as Record<string, unknown>;
    const months = t['imprisonment'];
    if (typeof months !== 'number' || !Number.isFinite(months) || months < 0) {
      fail('meta.term_of_imprisonment.imprisonment', `expected a non-negative number of months, got ${describe(months)}`);
    }
    const flag = (name: string): boolean => {
      const v = t[name] ?? false;
      if (typeof v !== 'boolean') fail(`meta.term_of_imprisonment.${name}`, `expected true or false, got ${describe(v)}`);
      return v as boolean;
    };
    const term: Term = { months: months as number, life: flag('life_imprisonment'), death: flag('death_penalty') };
    const groups: Record<string, string> = {};
    for (const [name, path] of Object.entries(groupFields)) {
      let v = lookup(rec, path);
      if (v === undefined) v = lookup(m, path);
      if (v === undefined || v === null) {
        if (options.requireGroups?.includes(name)) fail(path, `group attribute "${name}" is required`);
        continue;
      }
      if (typeof v !== 'string' && typeof v !== 'number') fail(path, `expected a string or number, got ${describe(v)}`);
      groups[name] = String(v);
    }
    let year: number | undefined;
    const y = rec['year'] ?? m['year'];
    if (y !== undefined) {
      if (typeof y !== 'number' || !Number.isInteger(y)) fail('year', `expected an integer year, got ${describe(y)}`);
      year = y as number;
    }
    const c: JudgmentCase = { id: String(rec['id'] ?? line), fact: fact as string, charges: [...new Set(accusation as string[])], articles, term, groups };
    if (year !== undefined) c.year = year;
    cases.push(c);
  }
  return cases;
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
export function parseCasesCsv(text: string, options: ReadOptions = {}): JudgmentCase[] {
  const source = options.source ?? 'input';
  const records = parseCsvRecords(text, source);
  const header = records[0];
  if (!header) throw new CaseFormatError(source, 1, '(header)', 'empty file: expected a header row');
  const names = header.fields.map((f) => f.trim());
  for (const required of ['fact', 'charges', 'term_months']) {
    if (!names.includes(required)) throw new CaseFormatError(source, header.line, required, 'column missing from the header');
  }
  const known = new Set(['id', 'fact', 'charges', 'articles', 'term_months', 'life', 'death', 'year']);
  const cases: JudgmentCase[] = [];
  for (const { line, fields } of records.slice(1)) {
    const fail = (field: string, detail: string): never => {
      throw new CaseFormatError(source, line, field, detail);
    };
    if (fields.length !== names.length) fail('(record)', `expected ${names.length} columns, got ${fields.length}`);
    const row: Record<string, string> = {};
    names.forEach((n, j) => {
      row[n] = fields[j]!.trim();
    });
    const fact = row['fact']!;
    if (fact === '') fail('fact', 'empty');
    // All charges are kept (a case may have several); repeats are dropped: a conviction is a set.
    const charges = [...new Set(row['charges']!.split(';').map((s) => s.trim()).filter((s) => s !== ''))];
    if (charges.length === 0) fail('charges', `expected at least one charge, got ${JSON.stringify(row['charges'])}`);
    const articles = (row['articles'] ?? '').split(';').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n <= 0) fail('articles', `expected positive integer article numbers, got ${JSON.stringify(s)}`);
      return n;
    });
    const months = Number(row['term_months']);
    if (row['term_months'] === '' || !Number.isFinite(months) || months < 0) {
      fail('term_months', `expected a non-negative number of months, got ${JSON.stringify(row['term_months'])}`);
    }
    const bool = (name: string): boolean => {
      const v = (row[name] ?? '').toLowerCase();
      if (v === '' || v === 'false' || v === '0') return false;
      if (v === 'true' || v === '1') return true;
      return fail(name, `expected true/false/1/0, got ${JSON.stringify(row[name])}`);
    };
    const groups: Record<string, string> = {};
    for (const n of names) if (!known.has(n) && row[n] !== '') groups[n] = row[n]!;
    for (const g of options.requireGroups ?? []) if (groups[g] === undefined) fail(g, `group attribute "${g}" is required`);
    const c: JudgmentCase = {
      id: row['id'] || String(line),
      fact,
      charges,
      articles,
      term: { months, life: bool('life'), death: bool('death') },
      groups,
    };
    if (row['year']) {
      const y = Number(row['year']);
      if (!Number.isInteger(y)) fail('year', `expected an integer year, got ${JSON.stringify(row['year'])}`);
      c.year = y;
    }
    cases.push(c);
  }
  return cases;
}

/** Reads a `.jsonl`/`.json` (CAIL2018) or `.csv` file by its extension. */
export function readCases(path: string, options: Omit<ReadOptions, 'source'> = {}): JudgmentCase[] {
  if (/\.csv$/i.test(path)) return parseCasesCsv(readFileSync(path, 'utf8'), { ...options, source: path });
  if (/\.jsonl?$/i.test(path)) return parseCailJsonl(readFileSync(path, 'utf8'), { ...options, source: path });
  throw new Error(`readCases: ${path}: unknown extension (expected .jsonl, .json or .csv)`);
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
        },
        ...c.groups,
        ...(c.year !== undefined ? { year: c.year } : {}),
      }),
    )
    .join('\n')
    .concat('\n');
}
