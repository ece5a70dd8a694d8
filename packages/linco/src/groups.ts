/**
 * Group attributes of cases, by name: what `--group-by` and the breakdowns accept.
 *
 * A name is looked up, in order, as
 *   1. a group attribute from the metadata (`region`, `gender` in FairLex, any CSV column);
 *   2. a derived attribute: `region` (from the procuratorate or court, else places, in the
 *      text), `gender` (from the defendant's introduction), `year` (metadata, else the text),
 *      `period` (the year in spans of `periodYears`), `severity` (light/medium/heavy, from
 *      the law), `charge` (the primary charge), `defendants` (one/several);
 *   3. a field of the record as read (`meta.punish_of_money`, `attributes.court_region`).
 * Cases without a value are counted in the coverage, with their ids, and left out of what
 * needs the attribute: never dropped silently.
 */
import { LincoInputError } from './errors.js';
import { type AttributeSource, extractGender, extractRegion, extractYear } from './attributes.js';
import { lookupField } from './readers.js';
import { severityBand } from './severity.js';
import { severityScore } from './severity.js';
import type { JudgmentCase } from './types.js';

export const DERIVED_ATTRIBUTES = ['region', 'gender', 'year', 'period', 'severity', 'charge', 'defendants'] as const;

export interface AttributeOptions {
  /** Width of a `period` in years. Default 2. */
  periodYears?: number;
  /** First year of the first period. Default: the earliest year among the cases. */
  periodStart?: number;
}

export interface AttributeValue {
  value: string;
  /** 'metadata', 'procuratorate', 'court', 'text', 'law' (severity), or 'field' (a record field). */
  source: AttributeSource | 'law' | 'field';
}

export interface AttributeCoverage {
  attribute: string;
  total: number;
  found: number;
  missing: number;
  /** Cases by where their value came from. */
  bySource: Record<string, number>;
  /** Cases per value. */
  values: Record<string, number>;
  /** Ids of the first cases without a value (at most 20). */
  missingIds: string[];
}

/** Year of a case: its metadata, else the latest non-birth year in its text. */
export function caseYear(c: JudgmentCase): { year: number; source: AttributeSource } | undefined {
  if (c.year !== undefined) return { year: c.year, source: 'metadata' };
  const y = extractYear(c.fact);
  return y ? { year: y.value, source: 'text' } : undefined;
}

export function periodLabel(year: number, start: number, width: number): string {
  const from = start + Math.floor((year - start) / width) * width;
  return width === 1 ? String(from) : `${from}–${from + width - 1}`;
}

function stringify(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map((x) => stringify(x) ?? '').join('、');
  return JSON.stringify(v);
}

/** The value of attribute `name` for one case, or undefined. `periodStart` must be set for 'period'. */
export function attributeValue(c: JudgmentCase, name: string, options: AttributeOptions = {}): AttributeValue | undefined {
  const meta = c.groups[name];
  if (meta !== undefined) return { value: meta, source: 'metadata' };
  switch (name) {
    case 'region': {
      const r = extractRegion(c.fact);
      return r ? { value: r.value, source: r.source } : undefined;
    }
    case 'gender': {
      const g = extractGender(c.fact);
      return g ? { value: g.value, source: g.source } : undefined;
    }
    case 'year': {
      const y = caseYear(c);
      return y ? { value: String(y.year), source: y.source } : undefined;
    }
    case 'period': {
      const y = caseYear(c);
      if (!y) return undefined;
      const width = options.periodYears ?? 2;
      return { value: periodLabel(y.year, options.periodStart ?? y.year, width), source: y.source };
    }
    case 'severity': {
      const s = severityScore(c);
      return s === undefined ? undefined : { value: severityBand(s), source: c.severity !== undefined ? 'metadata' : 'law' };
    }
    case 'charge':
      return { value: c.charges[0]!, source: 'metadata' };
    case 'defendants':
      return c.defendants ? { value: c.defendants.length > 1 ? 'several' : 'one', source: 'metadata' } : undefined;
  }
  if (!c.record) return undefined;
  let v = lookupField(c.record, name);
  if (v === undefined && !name.startsWith('meta.') && c.record['meta'] !== null && typeof c.record['meta'] === 'object') {
    v = lookupField(c.record['meta'] as Record<string, unknown>, name);
  }
  const s = stringify(v);
  return s === undefined ? undefined : { value: s, source: 'field' };
}

/** Fills `periodStart` from the data when it is not given (the earliest year). */
export function resolveAttributeOptions(cases: JudgmentCase[], name: string, options: AttributeOptions = {}): AttributeOptions {
  const width = options.periodYears ?? 2;
  if (!Number.isInteger(width) || width < 1) throw new LincoInputError(`periodYears must be an integer ≥ 1, got ${width}`);
  if (name !== 'period' || options.periodStart !== undefined) return { ...options, periodYears: width };
  let start = Infinity;
  for (const c of cases) {
    const y = caseYear(c);
    if (y && y.year < start) start = y.year;
  }
  return { ...options, periodYears: width, ...(Number.isFinite(start) ? { periodStart: start } : {}) };
}

/** Every case's value of `name` (undefined where unknown) and the coverage report. */
export function attributeValues(cases: JudgmentCase[], name: string, options: AttributeOptions = {}): { values: (string | undefined)[]; coverage: AttributeCoverage } {
  const o = resolveAttributeOptions(cases, name, options);
  const coverage: AttributeCoverage = { attribute: name, total: cases.length, found: 0, missing: 0, bySource: {}, values: {}, missingIds: [] };
  const values = cases.map((c) => {
    const v = attributeValue(c, name, o);
    if (!v) {
      coverage.missing++;
      if (coverage.missingIds.length < 20) coverage.missingIds.push(c.id);
      return undefined;
    }
    coverage.found++;
    coverage.bySource[v.source] = (coverage.bySource[v.source] ?? 0) + 1;
    coverage.values[v.value] = (coverage.values[v.value] ?? 0) + 1;
    return v.value;
  });
  return { values, coverage };
}

/**
 * Cases with attribute `name` set as a group attribute (copies; the input is not changed),
 * so the judge planner can split by it, and the coverage report. Cases without a value are
 * kept but carry no `groups[name]`: the planner leaves them out and the coverage counts them.
 */
export function withAttribute(cases: JudgmentCase[], name: string, options: AttributeOptions = {}): { cases: JudgmentCase[]; coverage: AttributeCoverage } {
  if (typeof name !== 'string' || name.trim() === '') throw new LincoInputError(`group attribute: expected a name, got ${JSON.stringify(name)}`);
  const { values, coverage } = attributeValues(cases, name, options);
  const out = cases.map((c, i) => {
    const v = values[i];
    if (v === undefined || c.groups[name] === v) return c;
    return { ...c, groups: { ...c.groups, [name]: v } };
  });
  return { cases: out, coverage };
}

/** "region: 812 of 1000 cases (790 procuratorate, 22 text); 188 without it: 17, 23, …". */
export function describeCoverage(c: AttributeCoverage): string {
  const sources = Object.entries(c.bySource).map(([s, n]) => `${n} ${s}`).join(', ');
  const head = `${c.attribute}: found for ${c.found} of ${c.total} cases${sources ? ` (${sources})` : ''}`;
  if (c.missing === 0) return head;
  return `${head}; ${c.missing} without it, left out of what needs it (ids ${c.missingIds.join(', ')}${c.missing > c.missingIds.length ? ', …' : ''})`;
}
