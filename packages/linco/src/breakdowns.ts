/** Breakdown features of held-out cases: charge, severity band, year. */
import { chargeSeverity, severityBand } from './synthetic.js';
import type { JudgmentCase } from './types.js';

export type BreakdownName = 'charge' | 'severity' | 'year' | `group:${string}`;

export function breakdownValue(c: JudgmentCase, name: BreakdownName): string {
  if (name === 'charge') return c.charges[0]!;
  if (name === 'severity') {
    const s = c.severity ?? chargeSeverity(c.charges[0]!);
    return s === undefined ? 'unknown' : severityBand(s);
  }
  if (name === 'year') return c.year === undefined ? 'unknown' : String(c.year);
  if (name.startsWith('group:')) return c.groups[name.slice(6)] ?? 'unknown';
  throw new Error(`breakdowns: unknown breakdown "${name}" (use charge, severity, year or group:<attribute>)`);
}

export function breakdownValues(cases: JudgmentCase[], names: BreakdownName[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const n of names) out[n] = cases.map((c) => breakdownValue(c, n));
  return out;
}
