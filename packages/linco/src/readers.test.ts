import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaseFormatError, describeExclusions, FAIRLEX_TERM_MONTHS, parseCasesCsv, parseCasesJsonl, parseCsvRecords, readCases, toCailJsonl, UNRECORDED_CHARGE } from './readers.js';

const FIXTURE = new URL('../test-fixtures/cail2018-sample.jsonl', import.meta.url).pathname;
const FAIRLEX = new URL('../test-fixtures/fairlex-cail-sample.jsonl', import.meta.url).pathname;

const parse = (text: string, options = {}) => parseCasesJsonl(text, options).cases;
const parseCsv = (text: string, options = {}) => parseCasesCsv(text, options).cases;

/** A CAIL2018 record as published: fact and meta only. */
const cail = (over: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) =>
  JSON.stringify({
    fact: '被告人张某，男，于2015年在某地盗窃财物。',
    meta: {
      relevant_articles: [264],
      accusation: ['盗窃'],
      punish_of_money: 2000,
      criminals: ['张某'],
      term_of_imprisonment: { death_penalty: false, imprisonment: 6, life_imprisonment: false },
      ...meta,
    },
    ...over,
  });

describe('CAIL2018 as published', () => {
  it('reads every published field of the hand-written fixture and counts what it leaves out', () => {
    const { cases, report } = readCases(FIXTURE);
    expect(report).toMatchObject({ formats: ['cail2018'], records: 48, kept: 45, chargesRecorded: true });
    // Two cases name two defendants (meta.criminals), one has no term at all.
    expect(report.excluded).toEqual({ 'several defendants': { count: 2, lines: [44, 45] }, 'no term of imprisonment': { count: 1, lines: [48] } });
    expect(describeExclusions(report)).toEqual(['several defendants: 2 (lines 44, 45)', 'no term of imprisonment: 1 (line 48)']);
    const first = cases[0]!;
    expect(first).toMatchObject({ id: '1', charges: ['盗窃'], articles: [264], term: { months: 8, life: false, death: false }, defendants: ['张某'], fine: 3000, groups: {} });
    expect(first.fact.startsWith('浙江省温州市鹿城区人民检察院指控')).toBe(true);
    // Death and life imprisonment are flags, never month counts.
    const death = cases.find((c) => c.charges[0] === '故意杀人')!;
    expect(death.term).toEqual({ months: 0, life: false, death: true });
    expect(cases.find((c) => c.charges[0] === '抢劫')!.term).toEqual({ months: 0, life: true, death: false });
    // Missing optional fields: no criminals, no fine, no articles.
    const sparse = cases.find((c) => c.fact.includes('被告人鲁某'))!;
    expect(sparse).toMatchObject({ articles: [], charges: ['盗窃'], term: { months: 7 } });
    expect(sparse.defendants).toBeUndefined();
    expect(sparse.fine).toBeUndefined();
  });

  it('keeps several defendants on request, and tells several defendants from the text when criminals is missing', () => {
    expect(readCases(FIXTURE, { multiDefendant: 'keep' }).report).toMatchObject({ kept: 47, excluded: { 'no term of imprisonment': { count: 1 } } });
    const two = cail({ fact: '公诉机关指控，被告人甲某、乙某共同盗窃。' }, { criminals: undefined });
    const plural = cail({ fact: '经审理查明，二被告人结伙盗窃。' }, { criminals: undefined });
    const one = cail({ fact: '被告人丙某到案后如实供述。' }, { criminals: undefined });
    const r = parseCasesJsonl([two, plural, one].join('\n'));
    expect(r.report.excluded['several defendants']).toEqual({ count: 2, lines: [1, 2] });
    expect(r.cases.map((c) => c.fact)).toEqual(['被告人丙某到案后如实供述。']);
  });

  it('accepts the forms real files use: numeric strings, 133之一, −1/−2 for life and death, a BOM, CRLF', () => {
    const text = `\uFEFF${cail({}, { relevant_articles: ['133之一', '第264条', 264], term_of_imprisonment: { imprisonment: '12', death_penalty: 'false', life_imprisonment: 0 } })}\r\n${cail({}, { term_of_imprisonment: { imprisonment: -2 } })}\r\n${cail({}, { term_of_imprisonment: { imprisonment: -1, life_imprisonment: false } })}\r\n`;
    const [a, b, c] = parse(text);
    expect(a).toMatchObject({ articles: [133, 264], term: { months: 12, life: false, death: false } });
    expect(b!.term).toEqual({ months: 0, life: false, death: true });
    expect(c!.term).toEqual({ months: 0, life: true, death: false });
  });

  it('excludes records without a fact, a charge or a term, and counts them', () => {
    const text = [
      cail({ fact: '   ' }),
      JSON.stringify({ meta: { accusation: ['盗窃'], term_of_imprisonment: { imprisonment: 3 } } }),
      cail({}, { accusation: [] }),
      cail({}, { accusation: undefined }),
      JSON.stringify({ fact: '被告人某甲盗窃。' }),
      cail({}, { term_of_imprisonment: { death_penalty: false, life_imprisonment: false } }),
      cail(),
    ].join('\n');
    const r = parseCasesJsonl(text);
    expect(r.cases).toHaveLength(1);
    expect(r.report.excluded).toEqual({
      'no fact': { count: 2, lines: [1, 2] },
      'no charge': { count: 3, lines: [3, 4, 5] },
      'no term of imprisonment': { count: 1, lines: [6] },
    });
  });

  it('names the source, line and field of a malformed value', () => {
    const bad: [string, RegExp][] = [
      [`${cail()}\n{not json`, /cail.jsonl: line 2, field \(record\): not valid JSON/],
      [cail({ fact: 42 }), /line 1, field fact: expected a string, got 42/],
      [cail({}, { accusation: '盗窃' }), /line 1, field meta.accusation: expected an array of charge names/],
      [cail({}, { term_of_imprisonment: { imprisonment: 'abc' } }), /field meta.term_of_imprisonment.imprisonment: expected a non-negative number of months, got "abc"/],
      [cail({}, { term_of_imprisonment: { imprisonment: -5 } }), /field meta.term_of_imprisonment.imprisonment: expected a non-negative number of months, got -5/],
      [cail({}, { term_of_imprisonment: { imprisonment: 3, life_imprisonment: 'yes' } }), /field meta.term_of_imprisonment.life_imprisonment: expected true or false, got "yes"/],
      [cail({}, { relevant_articles: [264, -1] }), /field meta.relevant_articles\[1\]: expected a positive integer article number, got -1/],
      [cail({}, { criminals: '张某' }), /field meta.criminals: expected an array of names/],
      [cail({}, { punish_of_money: 'much' }), /field meta.punish_of_money: expected a non-negative amount, got "much"/],
      [cail({ year: 'twenty' }), /field year: expected an integer year/],
      ['[1,2]', /expected a JSON object/],
    ];
    for (const [text, message] of bad) {
      expect(() => parse(text, { source: 'cail.jsonl' })).toThrow(message);
      expect(() => parse(text)).toThrow(CaseFormatError);
    }
  });

  it('reads group attributes from the record, meta or attributes and normalizes them', () => {
    const [a, b] = parse(`${cail({ region: '广东省', gender: '女' })}\n${cail({}, { gender: 'M' })}`);
    expect(a!.groups).toEqual({ region: 'Guangdong', gender: 'female' });
    expect(b!.groups).toEqual({ gender: 'male' });
    expect(() => parse(cail(), { requireGroups: ['region'] })).toThrow(/line 1, field region: group attribute "region" is required/);
    expect(parse(cail({ court: '某院' }), { groupFields: { court: 'court' } })[0]!.groups).toEqual({ court: '某院' });
  });

  it('round-trips through toCailJsonl', () => {
    const cases = parse(`${cail({ region: 'Hunan', year: 2015 })}\n${cail({ region: 'Beijing' }, { accusation: ['盗窃', '诈骗', '盗窃'], relevant_articles: [264, 266] })}`);
    expect(cases[1]!.charges).toEqual(['盗窃', '诈骗']);
    const again = parse(toCailJsonl(cases));
    expect(again.map(({ record: _r, ...c }) => c)).toEqual(cases.map(({ record: _r, ...c }) => c));
  });
});

describe("FairLex's CAIL subset", () => {
  it('reads text, the term class and both attributes, flat or under attributes, as indices or names', () => {
    const { cases, report } = readCases(FAIRLEX);
    expect(report).toMatchObject({ formats: ['fairlex'], records: 8, kept: 7, chargesRecorded: false, excluded: { 'no term of imprisonment': { count: 1, lines: [8] } } });
    expect(cases.map((c) => c.groups)).toEqual([
      { region: 'Beijing', gender: 'male' },
      { region: 'Guangdong', gender: 'female' },
      { region: 'Zhejiang', gender: 'male' },
      { region: 'Hunan', gender: 'female' },
      { region: 'Sichuan', gender: 'male' },
      { region: 'Guangxi', gender: 'male' },
      { region: 'Liaoning', gender: 'female' },
    ]);
    // Classes 0 and ">120": no prison, and the log-scale midpoint of 121–180 months.
    expect(cases[0]!.term.months).toBe(0);
    expect(cases[2]!.term.months).toBeCloseTo(Math.sqrt(121 * 181) - 1, 10);
    expect(cases[1]!.term.months).toBeCloseTo(FAIRLEX_TERM_MONTHS[2]!, 10);
    // The published files hold the text as paragraphs.
    expect(cases[3]!.fact).toBe('湖南省长沙市人民检察院指控，被告人某某盗窃。\n经审理查明，上述事实清楚。');
    expect(cases.every((c) => c.charges[0] === UNRECORDED_CHARGE)).toBe(true);
  });

  it('names a bad term class', () => {
    expect(() => parse(JSON.stringify({ text: 'x', label: 9, defendant_gender: 0, court_region: 0 }), { source: 'f.jsonl' })).toThrow(/f.jsonl: line 1, field label: expected a FairLex term class/);
  });
});

describe('CSV', () => {
  it('splits quoted fields with commas, quotes and newlines', () => {
    const recs = parseCsvRecords('a,b\n"x, ""y""","line1\nline2"\n3,4');
    expect(recs).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, "y"', 'line1\nline2'] },
      { line: 4, fields: ['3', '4'] },
    ]);
  });

  it('reads cases; unknown columns become group attributes', () => {
    const csv = 'fact,charges,articles,term_months,life,death,region,gender,year\n"He stole, twice",theft;fraud;theft,264;266,8,false,0,Hunan,male,2016\nkilled,homicide,232,,true,false,Beijing,F,\n';
    const cases = parseCsv(csv);
    expect(cases[0]).toMatchObject({ fact: 'He stole, twice', charges: ['theft', 'fraud'], articles: [264, 266], term: { months: 8, life: false, death: false }, groups: { region: 'Hunan', gender: 'male' }, year: 2016 });
    expect(cases[1]).toMatchObject({ term: { months: 0, life: true }, groups: { region: 'Beijing', gender: 'female' } });
    expect(cases[1]!.year).toBeUndefined();
  });

  it('names the line and field of a bad value and counts unusable rows', () => {
    const head = 'fact,charges,term_months,life\n';
    expect(() => parseCsv(`${head}a,theft,x,false`, { source: 'c.csv' })).toThrow(/c.csv: line 2, field term_months: expected a non-negative number of months, got "x"/);
    expect(() => parseCsv(`${head}a,theft,3,maybe`)).toThrow(/line 2, field life: expected true\/false\/1\/0/);
    expect(() => parseCsv(`${head}a,theft,3`)).toThrow(/line 2, field \(record\): expected 4 columns, got 3/);
    expect(() => parseCsv('fact,term_months\na,3')).toThrow(/line 1, field charges: column missing/);
    expect(() => parseCsv(`${head}"open,theft,3,false`)).toThrow(/unterminated quoted field/);
    const r = parseCasesCsv(`${head}a,theft,3,false\nb,,3,false\n,theft,3,false\nc,theft,,false\n`);
    expect(r.cases).toHaveLength(1);
    expect(r.report.excluded).toEqual({ 'no charge': { count: 1, lines: [3] }, 'no fact': { count: 1, lines: [4] }, 'no term of imprisonment': { count: 1, lines: [5] } });
  });

  it('readCases picks the reader by extension', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linco-'));
    writeFileSync(join(dir, 'a.jsonl'), cail());
    writeFileSync(join(dir, 'a.csv'), 'fact,charges,term_months\nf,theft,2\n');
    expect(readCases(join(dir, 'a.jsonl')).cases[0]!.charges).toEqual(['盗窃']);
    expect(readCases(join(dir, 'a.csv')).cases[0]!.term.months).toBe(2);
    expect(() => readCases(join(dir, 'a.txt'))).toThrow(/unknown extension/);
  });
});
