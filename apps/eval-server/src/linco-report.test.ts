/**
 * The dashboard's LInCo report view, without a browser: the tables it draws from a report
 * that `kiln linco analyze` wrote (test-fixtures/linco-report.json, from the hand-written
 * CAIL fixture of @kiln/linco with the adversarial and reweighting comparison).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a browser module without type declarations
import { dataLine, reportTables } from '../public/linco-report.js';

const report = JSON.parse(readFileSync(new URL('../test-fixtures/linco-report.json', import.meta.url), 'utf8'));

type Table = { id: string; title: string; head: string[]; rows: string[][]; chart?: { groups: { group: string; value: number; lo: number; hi: number }[] }; lines: string[] };

describe('the LInCo report view', () => {
  const tables = reportTables(report) as Table[];

  it('draws the three analyses and the de-biasing comparison, one row per group', () => {
    expect(tables.map((t) => t.id)).toEqual(['groups', 'periods', 'severity', 'debias']);
    expect(dataLine(report)).toBe('cail2018-sample.jsonl: 48 records, 45 cases (left out — several defendants: 2, no term of imprisonment: 1)');
    const [groups, periods, severity, debias] = tables;
    expect(groups!.rows.map((r) => r[0])).toEqual(['region', 'gender']);
    expect(groups!.rows[0]![1]).toBe(`${report.groups.attributes[0].judges.length} × ${report.groups.attributes[0].perJudge}`);
    expect(groups!.lines.at(-1)).toMatch(/^region − gender \(term excess\): -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\], p/);
    expect(periods!.rows.map((r) => r[0])).toEqual(report.periods.rows.map((r: { group: string }) => r.group));
    expect(severity!.rows.map((r) => r[0])).toEqual(report.severity.rows.map((r: { group: string }) => r.group));
    expect(debias!.rows.map((r) => r[0])).toEqual(['adversarial', 'reweight']);
    expect(debias!.rows[0]![1]).toBe('shared');
  });

  it("prints each number with its interval and charts the term excess as the report holds it", () => {
    const row = report.periods.rows[0];
    const drawn = tables[1]!.rows[0]!;
    expect(drawn[1]).toBe(String(row.n));
    expect(drawn[4]).toBe(`${row.excess.term.value.toFixed(3)} [${row.excess.term.ci[0].toFixed(3)}, ${row.excess.term.ci[1].toFixed(3)}]`);
    expect(tables[1]!.chart!.groups[0]).toEqual({ group: row.group, value: row.excess.term.value, lo: row.excess.term.ci[0], hi: row.excess.term.ci[1] });
    const change = report.debias.rows[1].change.excess.term;
    expect(tables[3]!.chart!.groups[1]).toEqual({ group: 'reweight', value: change.value, lo: change.ci[0], hi: change.ci[1] });
  });

  it('shows an attribute that could not be analysed, and a report without de-biasing', () => {
    const failed = { ...report, debias: undefined, groups: { attributes: [report.groups.attributes[0], { attribute: 'court', coverage: { found: 0, total: 45 }, error: 'no case has the group attribute "court"' }] } };
    const t = reportTables(failed) as Table[];
    expect(t.map((x) => x.id)).toEqual(['groups', 'periods', 'severity']);
    expect(t[0]!.rows[1]).toEqual(['court', '–', '–', '–', '–', '–', 'not analysed: no case has the group attribute "court"']);
    expect(t[0]!.chart!.groups.map((g) => g.group)).toEqual(['region']);
  });
});
