import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaseFormatError, parseCailJsonl, parseCasesCsv, parseCsvRecords, readCases, toCailJsonl } from './readers.js';

const good = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    fact: '被告人于2015年盗窃财物',
    meta: {
      accusation: ['盗窃'],
      relevant_articles: [264],
      term_of_imprisonment: { death_penalty: false, life_imprisonment: false, imprisonment: 6 },
      ...((over['meta'] as object) ?? {}),
    },
    region: 'Hunan',
    gender: 'male',
    year: 2015,
    ...Object.fromEntries(Object.entries(over).filter(([k]) => k !== 'meta')),
  });

describe('parseCailJsonl', () => {
  it('reads CAIL2018 records with group attributes, skipping blank lines', () => {
    const text = `${good()}\n\n${JSON.stringify({
      fact: 'x',
      meta: { accusation: ['故意杀人'], relevant_articles: ['232'], term_of_imprisonment: { death_penalty: true, life_imprisonment: false, imprisonment: 0 }, gender: 'female' },
    })}\n`;
    const cases = parseCailJsonl(text);
    expect(cases).toHaveLength(2);
    expect(cases[0]).toMatchObject({ charges: ['盗窃'], articles: [264], term: { months: 6, life: false, death: false }, groups: { region: 'Hunan', gender: 'male' }, year: 2015 });
    // Group attributes are looked up in meta too; string article numbers are accepted.
    expect(cases[1]).toMatchObject({ id: '3', articles: [232], term: { death: true }, groups: { gender: 'female' } });
  });

  it('keeps every charge of a multi-charge record, in order, without repeats', () => {
    const [c] = parseCailJsonl(good({ meta: { accusation: ['盗窃', '诈骗', '盗窃'], relevant_articles: [264, 266] } }));
    expect(c!.charges).toEqual(['盗窃', '诈骗']);
    expect(c!.articles).toEqual([264, 266]);
    // Round trip through the writer keeps both.
    expect(parseCailJsonl(toCailJsonl([c!]))[0]!.charges).toEqual(['盗窃', '诈骗']);
    expect(parseCasesCsv('fact,charges,term_months\nx,theft; fraud;theft,3\n')[0]!.charges).toEqual(['theft', 'fraud']);
  });

  it('names the line and field of a bad record', () => {
    const cases: [string, RegExp][] = [
      [`${good()}\n{not json`, /line 2, field \(record\): not valid JSON/],
      [good({ fact: '' }), /line 1, field fact: expected a non-empty string/],
      [good({ meta: { accusation: [] } }), /line 1, field meta.accusation/],
      [good({ meta: { term_of_imprisonment: { imprisonment: 'abc' } } }), /line 1, field meta.term_of_imprisonment.imprisonment: expected a non-negative number of months, got "abc"/],
      [good({ meta: { term_of_imprisonment: { imprisonment: 3, life_imprisonment: 'yes' } } }), /field meta.term_of_imprisonment.life_imprisonment: expected true or false/],
      [good({ meta: { relevant_articles: [264, -1] } }), /field meta.relevant_articles\[1\]/],
      [good({ year: 'twenty' }), /field year: expected an integer year/],
      ['[1,2]', /expected a JSON object/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseCailJsonl(text, { source: 'cail.jsonl' })).toThrow(message);
      expect(() => parseCailJsonl(text)).toThrow(CaseFormatError);
    }
  });

  it('enforces required group attributes', () => {
    const rec = JSON.stringify({ fact: 'f', meta: { accusation: ['盗窃'], term_of_imprisonment: { imprisonment: 1 } } });
    expect(() => parseCailJsonl(rec, { requireGroups: ['region'] })).toThrow(/line 1, field region: group attribute "region" is required/);
  });

  it('round-trips through toCailJsonl', () => {
    const cases = parseCailJsonl(`${good()}\n${good({ region: 'Beijing' })}`);
    expect(parseCailJsonl(toCailJsonl(cases))).toEqual(cases);
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
    const csv = 'fact,charges,articles,term_months,life,death,region,gender,year\n"He stole, twice",theft;fraud,264;266,8,false,0,Hunan,male,2016\nkilled,homicide,232,0,true,false,Beijing,female,\n';
    const cases = parseCasesCsv(csv);
    expect(cases[0]).toMatchObject({ fact: 'He stole, twice', charges: ['theft', 'fraud'], articles: [264, 266], term: { months: 8, life: false, death: false }, groups: { region: 'Hunan', gender: 'male' }, year: 2016 });
    expect(cases[1]).toMatchObject({ term: { life: true }, groups: { region: 'Beijing', gender: 'female' } });
    expect(cases[1]!.year).toBeUndefined();
  });

  it('names the line and field of a bad record', () => {
    const head = 'fact,charges,term_months,life\n';
    expect(() => parseCasesCsv(`${head}a,theft,x,false`, { source: 'c.csv' })).toThrow(/c.csv: line 2, field term_months: expected a non-negative number of months, got "x"/);
    expect(() => parseCasesCsv(`${head}a,theft,3,false\nb,,3,false`)).toThrow(/line 3, field charges/);
    expect(() => parseCasesCsv(`${head}a,theft,3,maybe`)).toThrow(/line 2, field life: expected true\/false\/1\/0/);
    expect(() => parseCasesCsv(`${head}a,theft,3`)).toThrow(/line 2, field \(record\): expected 4 columns, got 3/);
    expect(() => parseCasesCsv('fact,term_months\na,3')).toThrow(/line 1, field charges: column missing/);
    expect(() => parseCasesCsv(`${head}"open,theft,3,false`)).toThrow(/unterminated quoted field/);
  });

  it('readCases picks the reader by extension', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linco-'));
    writeFileSync(join(dir, 'a.jsonl'), good());
    writeFileSync(join(dir, 'a.csv'), 'fact,charges,term_months\nf,theft,2\n');
    expect(readCases(join(dir, 'a.jsonl'))[0]!.charges).toEqual(['盗窃']);
    expect(readCases(join(dir, 'a.csv'))[0]!.term.months).toBe(2);
    expect(() => readCases(join(dir, 'a.txt'))).toThrow(/unknown extension/);
  });
});
