import { describe, expect, it } from 'vitest';
import { breakdownTables } from './breakdowns.js';
import { attributeValue, attributeValues, describeCoverage, periodLabel, withAttribute } from './groups.js';
import { readCases } from './readers.js';

const FIXTURE = new URL('../test-fixtures/cail2018-sample.jsonl', import.meta.url).pathname;
const { cases } = readCases(FIXTURE);

describe('group attributes of the CAIL fixture', () => {
  it('derives region from the procuratorate (or the places named), counting every case without one', () => {
    const { values, coverage } = attributeValues(cases, 'region');
    expect(coverage).toEqual({
      attribute: 'region',
      total: 45,
      found: 44,
      missing: 1,
      bySource: { procuratorate: 42, text: 2 },
      values: { Zhejiang: 14, Hunan: 15, Guangdong: 13, Jiangsu: 1, Sichuan: 1 },
      missingIds: ['43'],
    });
    expect(values[0]).toBe('Zhejiang');
    expect(describeCoverage(coverage)).toBe('region: found for 44 of 45 cases (42 procuratorate, 2 text); 1 without it, left out of what needs it (ids 43)');
  });

  it('derives gender, year, period and severity', () => {
    expect(attributeValues(cases, 'gender').coverage).toMatchObject({ found: 43, missing: 2, values: { male: 31, female: 12 }, missingIds: ['41', '43'] });
    expect(attributeValues(cases, 'year').coverage.values).toEqual({ 2014: 7, 2015: 10, 2016: 12, 2017: 9, 2018: 6 });
    expect(attributeValues(cases, 'period', { periodYears: 2, periodStart: 2014 }).coverage.values).toEqual({ '2014–2015': 17, '2016–2017': 21, '2018–2019': 6 });
    expect(attributeValues(cases, 'severity').coverage).toMatchObject({ found: 45, bySource: { law: 45 }, values: { heavy: 32, light: 7, medium: 6 } });
    expect(periodLabel(2017, 2013, 1)).toBe('2017');
    expect(periodLabel(2017, 2013, 3)).toBe('2016–2018');
  });

  it('takes any field of the record as an attribute, and metadata before the text', () => {
    expect(attributeValue(cases[0]!, 'meta.punish_of_money')).toEqual({ value: '3000', source: 'field' });
    expect(attributeValue(cases[0]!, 'criminals')).toEqual({ value: '张某', source: 'field' });
    expect(attributeValue(cases[0]!, 'nothing.here')).toBeUndefined();
    const relabelled = { ...cases[0]!, groups: { region: 'Elsewhere' } };
    expect(attributeValue(relabelled, 'region')).toEqual({ value: 'Elsewhere', source: 'metadata' });
  });

  it('sets the attribute on copies, leaving cases without it unmarked', () => {
    const { cases: marked, coverage } = withAttribute(cases, 'gender');
    expect(marked.filter((c) => c.groups['gender'] !== undefined)).toHaveLength(coverage.found);
    expect(cases[0]!.groups).toEqual({});
    expect(() => withAttribute(cases, ' ')).toThrow(/expected a name/);
  });

  it('breaks down by any attribute, unknown values as "unknown"', () => {
    const { values, coverage } = breakdownTables(cases.slice(40), ['group:region', 'severity']);
    expect(values['group:region']).toEqual(['Jiangsu', 'Sichuan', 'unknown', 'Guangdong', 'Hunan']);
    expect(values['severity']).toEqual(['heavy', 'heavy', 'light', 'heavy', 'heavy']);
    expect(coverage['group:region']!.missing).toBe(1);
  });
});
