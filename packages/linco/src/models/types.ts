/**
 * The legal-judgment-prediction model interface. Every model maps a batch of fact texts to
 * the same three heads — charge logits, term-kind logits (fixed / life / death, coded apart
 * because life and death are not large month counts) and log(1 + months) for fixed terms —
 * plus the hidden representation the heads read, so de-biasing can attach a branch to it.
 */
import type { tf } from '@kiln/tensor';
import type { JudgmentCase } from '../types.js';

export interface LjpOutputs {
  hidden: tf.Tensor2D;
  chargeLogits: tf.Tensor2D;
  kindLogits: tf.Tensor2D;
  /** Predicted log(1 + months) for a fixed term. */
  logTerm: tf.Tensor1D;
}

/** Model-specific encoding of a list of fact texts, computed once and indexed by row. */
export interface PreparedTexts {
  readonly size: number;
}

export interface LjpModel {
  readonly kind: string;
  readonly numCharges: number;
  /** Encodes facts once (tokenization, hashing, padding). */
  prepare(facts: string[]): PreparedTexts;
  /** Forward pass on rows `rows` of a prepared set: `decode(encode(...))`. Call inside tf.tidy. */
  forward(prepared: PreparedTexts, rows: ArrayLike<number>): LjpOutputs;
  /** The encoder: texts → the hidden representation the heads read (rows × hidden). */
  encode(prepared: PreparedTexts, rows: ArrayLike<number>): tf.Tensor2D;
  /** The heads on a hidden representation (this model's or another model's encoder's). */
  decode(hidden: tf.Tensor2D): LjpOutputs;
  /** The encoder's variables (shared by a panel whose judges share one encoder). */
  encoderVariables(): tf.Variable[];
  /** The heads' variables. */
  headVariables(): tf.Variable[];
  trainableVariables(): tf.Variable[];
  dispose(): void;
}

export interface ModelFactoryArgs {
  numCharges: number;
  seed: number;
}

export type ModelFactory = (args: ModelFactoryArgs) => LjpModel;

/** Labels aligned with a case list: primary charge index, term kind, log(1 + months). */
export interface EncodedLabels {
  charge: Int32Array;
  kind: Int32Array;
  logMonths: Float32Array;
  /**
   * Every charge of each case as a multi-hot row (cases × vocabulary, row-major). Present
   * for multi-label training: the charge head is then read as per-charge sigmoids.
   */
  chargeSet?: Float32Array;
}

export type LabelCases = Pick<JudgmentCase, 'charges' | 'term'>[];
