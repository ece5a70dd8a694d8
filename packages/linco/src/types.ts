/**
 * The judgment-case data model. It mirrors CAIL2018 (`fact`, `meta.accusation`,
 * `meta.relevant_articles`, `meta.term_of_imprisonment`) plus the group attributes that
 * FairLex's CAIL subset adds (region, gender) and the judgment year.
 */

/** A sentence. Life imprisonment and death are kinds of their own, not large month counts. */
export interface Term {
  /** Fixed-term imprisonment in months (0 for none); ignored when `life` or `death`. */
  months: number;
  life: boolean;
  death: boolean;
}

export type TermKind = 'fixed' | 'life' | 'death';

export interface JudgmentCase {
  /** Stable identifier (line number for read files, index for synthetic ones). */
  id: string;
  /** The fact description the judgment rests on. */
  fact: string;
  /** Charge names; the first is the primary charge the models predict. */
  charges: string[];
  /** Relevant criminal-law article numbers. */
  articles: number[];
  term: Term;
  /** Group attributes (region, gender, ...) and anything else to split or break down by. */
  groups: Record<string, string>;
  year?: number;
  /** Severity of the primary charge, 1 (lightest) .. 5, when known. */
  severity?: number;
}

export function termKind(term: Term): TermKind {
  if (term.death) return 'death';
  if (term.life) return 'life';
  return 'fixed';
}

export const TERM_KINDS: readonly TermKind[] = ['fixed', 'life', 'death'];
