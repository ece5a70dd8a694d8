import { tf } from '@kiln/tensor';
import { TERM_KINDS } from '../types.js';
import { glorot, zeros } from './init.js';
import type { LjpOutputs } from './types.js';

/** The three output heads shared by every model, on top of a hidden vector. */
export class JudgmentHeads {
  readonly wCharge: tf.Variable;
  readonly bCharge: tf.Variable;
  readonly wKind: tf.Variable;
  readonly bKind: tf.Variable;
  readonly wTerm: tf.Variable;
  readonly bTerm: tf.Variable;

  constructor(seed: number, hidden: number, numCharges: number) {
    this.wCharge = glorot(seed + 101, [hidden, numCharges]);
    this.bCharge = zeros([numCharges]);
    this.wKind = glorot(seed + 102, [hidden, TERM_KINDS.length]);
    this.bKind = zeros([TERM_KINDS.length]);
    this.wTerm = glorot(seed + 103, [hidden, 1]);
    // Start the regression near a typical sentence (about a year) so early steps go to shape, not scale.
    this.bTerm = tf.variable(tf.tensor1d([Math.log(13)]));
  }

  apply(hidden: tf.Tensor2D): LjpOutputs {
    return {
      hidden,
      chargeLogits: tf.add(tf.matMul(hidden, this.wCharge), this.bCharge),
      kindLogits: tf.add(tf.matMul(hidden, this.wKind), this.bKind),
      logTerm: tf.reshape(tf.add(tf.matMul(hidden, this.wTerm), this.bTerm), [-1]) as tf.Tensor1D,
    };
  }

  variables(): tf.Variable[] {
    return [this.wCharge, this.bCharge, this.wKind, this.bKind, this.wTerm, this.bTerm];
  }
}
