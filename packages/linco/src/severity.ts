/**
 * The severity of a case from the law: the statutory maximum of the gravest offence it was
 * convicted of, read from its articles (CAIL's `relevant_articles`) and charges.
 *
 * Scale (score → band):
 *   1  maximum ≤ 3 years (criminal detention alone included)   light
 *   2  maximum ≤ 7 years                                       light
 *   3  maximum ≤ 15 years (the fixed-term ceiling)             medium
 *   4  life imprisonment                                       heavy
 *   5  death                                                   heavy
 */
import { lawArticle, lawCharge, type Penalty } from './criminal-law.js';
import type { JudgmentCase } from './types.js';

export type SeverityBand = 'light' | 'medium' | 'heavy';
export const SEVERITY_BANDS: readonly SeverityBand[] = ['light', 'medium', 'heavy'];

export function severityBand(score: number): SeverityBand {
  return score <= 2 ? 'light' : score === 3 ? 'medium' : 'heavy';
}

/** Penalties in order: a month count, then life, then death. */
function rank(p: Penalty): number {
  return p === 'death' ? 1e6 : p === 'life' ? 1e5 : p;
}

export function heavierPenalty(a: Penalty, b: Penalty): Penalty {
  return rank(a) >= rank(b) ? a : b;
}

export function penaltyScore(p: Penalty): number {
  if (p === 'death') return 5;
  if (p === 'life') return 4;
  return p <= 36 ? 1 : p <= 84 ? 2 : 3;
}

export function describePenalty(p: Penalty): string {
  if (typeof p !== 'number') return p === 'life' ? 'life imprisonment' : 'death';
  return p < 12 ? `${p} months` : `${p / 12} years`;
}

export interface CaseSeverity {
  /** The heaviest statutory maximum among the case's offences. */
  max: Penalty;
  score: number;
  band: SeverityBand;
  /** 'articles' when read from the cited articles, 'charges' when only the charges were known. */
  source: 'articles' | 'charges';
}

/**
 * The severity of `c` from the law. Each cited article gives its maximum; where one of the
 * case's charges is defined by that article (Art. 133 holds both 交通肇事 and 危险驾驶; Art.
 * 115 both 放火 and 失火) the charge's own, possibly lighter, maximum is used. Articles with
 * no penalty of their own (definitions, unit-crime rules) and articles outside the table
 * are skipped. Without a usable article, the charges decide. Undefined when neither is in
 * the table.
 */
export function caseSeverity(c: Pick<JudgmentCase, 'articles' | 'charges'>): CaseSeverity | undefined {
  const charges = c.charges.map((name) => lawCharge(name)).filter((e) => e !== undefined);
  let fromArticles: Penalty | undefined;
  for (const number of c.articles) {
    const entry = lawArticle(number);
    if (!entry) continue;
    const own = charges.filter((ch) => ch.article === number);
    let max: Penalty | null = entry.max;
    if (own.length > 0) max = own.map((ch) => ch.max).reduce(heavierPenalty);
    if (max === null) continue;
    fromArticles = fromArticles === undefined ? max : heavierPenalty(fromArticles, max);
  }
  let max = fromArticles;
  let source: CaseSeverity['source'] = 'articles';
  if (max === undefined && charges.length > 0) {
    max = charges.map((ch) => ch.max).reduce(heavierPenalty);
    source = 'charges';
  }
  if (max === undefined) return undefined;
  const score = penaltyScore(max);
  return { max, score, band: severityBand(score), source };
}

/**
 * The severity score of a case: its own `severity` when the data carries one (the synthetic
 * generator's scale), else the law's.
 */
export function severityScore(c: Pick<JudgmentCase, 'articles' | 'charges' | 'severity'>): number | undefined {
  return c.severity ?? caseSeverity(c)?.score;
}
