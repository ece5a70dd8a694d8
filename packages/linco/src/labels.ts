/** Label encoding shared by training and evaluation. */
import type { EncodedLabels } from './models/types.js';
import { type JudgmentCase, TERM_KINDS, termKind } from './types.js';

/** Charge vocabulary: primary charges in first-seen order, sorted for stability. */
export function chargeVocabulary(cases: Pick<JudgmentCase, 'charges'>[]): string[] {
  return [...new Set(cases.map((c) => c.charges[0]!))].sort();
}

export function encodeLabels(cases: Pick<JudgmentCase, 'charges' | 'term'>[], vocabulary: string[]): EncodedLabels {
  const index = new Map(vocabulary.map((c, i) => [c, i]));
  const charge = new Int32Array(cases.length);
  const kind = new Int32Array(cases.length);
  const logMonths = new Float32Array(cases.length);
  cases.forEach((c, i) => {
    const ci = index.get(c.charges[0]!);
    if (ci === undefined) throw new Error(`encodeLabels: case ${i}: charge "${c.charges[0]}" is not in the vocabulary`);
    charge[i] = ci;
    kind[i] = TERM_KINDS.indexOf(termKind(c.term));
    logMonths[i] = Math.log1p(c.term.months);
  });
  return { charge, kind, logMonths };
}
