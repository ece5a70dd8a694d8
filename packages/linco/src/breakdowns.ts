/**
 * Breakdowns of the held-out cases: any attribute groups.ts knows (charge, severity, year,
 * period, region, gender, a record field). `group:<attribute>` is accepted as another
 * spelling of `<attribute>`. Cases without a value fall in the group 'unknown'.
 */
import { LincoInputError } from './errors.js';
import { type AttributeCoverage, type AttributeOptions, attributeValues } from './groups.js';
import type { JudgmentCase } from './types.js';

export type BreakdownName = string;

function attributeOf(name: BreakdownName): string {
  return name.startsWith('group:') ? name.slice(6) : name;
}

export function breakdownValues(cases: JudgmentCase[], names: BreakdownName[], options: AttributeOptions = {}): Record<string, string[]> {
  return breakdownTables(cases, names, options).values;
}

/** Values per breakdown, with each breakdown's coverage. */
export function breakdownTables(cases: JudgmentCase[], names: BreakdownName[], options: AttributeOptions = {}): { values: Record<string, string[]>; coverage: Record<string, AttributeCoverage> } {
  const values: Record<string, string[]> = {};
  const coverage: Record<string, AttributeCoverage> = {};
  for (const n of names) {
    if (typeof n !== 'string' || attributeOf(n).trim() === '') throw new LincoInputError(`breakdowns: expected attribute names, got ${JSON.stringify(n)}`);
    const r = attributeValues(cases, attributeOf(n), options);
    values[n] = r.values.map((v) => v ?? 'unknown');
    coverage[n] = r.coverage;
  }
  return { values, coverage };
}
