/** Label encoding shared by training and evaluation. */
import type { EncodedLabels } from './models/types.js';
import { type JudgmentCase, TERM_KINDS, termKind } from './types.js';

/** Charge vocabulary: every charge of every case (not only the primary one), sorted. */
export function chargeVocabulary(cases: Pick<JudgmentCase, 'charges'>[]): string[] {
  return [...new Set(cases.flatMap((c) => c.charges))].sort();
}

/** Whether any case carries more than one distinct charge. */
export function hasMultiCharge(cases: Pick<JudgmentCase, 'charges'>[]): boolean {
  return cases.some((c) => new Set(c.charges).size > 1);
}

export interface EncodeOptions {
  /** Also encode every charge as a multi-hot row (`chargeSet`), for per-charge sigmoid heads. */
  multi?: boolean;
}

export function encodeLabels(cases: Pick<JudgmentCase, 'charges' | 'term'>[], vocabulary: string[], options: EncodeOptions = {}): EncodedLabels {
  const index = new Map(vocabulary.map((c, i) => [c, i]));
  const v = vocabulary.length;
  const charge = new Int32Array(cases.length);
  const kind = new Int32Array(cases.length);
  const logMonths = new Float32Array(cases.length);
  const chargeSet = options.multi ? new Float32Array(cases.length * v) : undefined;
  cases.forEach((c, i) => {
    if (c.charges.length === 0) throw new Error(`encodeLabels: case ${i} has no charge`);
    c.charges.forEach((name, k) => {
      const ci = index.get(name);
      if (ci === undefined) throw new Error(`encodeLabels: case ${i}: charge "${name}" is not in the vocabulary`);
      if (k === 0) charge[i] = ci;
      if (chargeSet) chargeSet[i * v + ci] = 1;
    });
    kind[i] = TERM_KINDS.indexOf(termKind(c.term));
    logMonths[i] = Math.log1p(c.term.months);
  });
  return chargeSet ? { charge, kind, logMonths, chargeSet } : { charge, kind, logMonths };
}
