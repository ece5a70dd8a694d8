/**
 * The judgment-case data model. It mirrors CAIL2018 (`fact`, `meta.accusation`,
 * `meta.relevant_articles`, `meta.term_of_imprisonment`, `meta.criminals`,
 * `meta.punish_of_money`) plus the group attributes that FairLex's CAIL subset adds
 * (region, gender) and the judgment year. Attributes the metadata lacks are read from the
 * fact text when asked for (see attributes.ts and groups.ts).
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
  /** Group attributes from the metadata (region, gender, ...), to split or break down by. */
  groups: Record<string, string>;
  /** Year of the judgment when the metadata has one (otherwise read from the text on demand). */
  year?: number;
  /**
   * Severity 1 (lightest) .. 5 when the data set defines its own (the synthetic generator
   * does); otherwise it comes from the law (severity.ts).
   */
  severity?: number;
  /** The defendants' names (CAIL's `meta.criminals`). */
  defendants?: string[];
  /** Fine in yuan (CAIL's `meta.punish_of_money`). */
  fine?: number;
  /** The record as read, for grouping by any of its fields (`--group-by meta.punish_of_money`). */
  record?: Record<string, unknown>;
}

export function termKind(term: Term): TermKind {
  if (term.death) return 'death';
  if (term.life) return 'life';
  return 'fixed';
}

export const TERM_KINDS: readonly TermKind[] = ['fixed', 'life', 'death'];
