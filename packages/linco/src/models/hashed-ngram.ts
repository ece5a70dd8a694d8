/**
 * The fast baseline: a bag of hashed character (or word) n-grams, embedded and mean-pooled
 * (fastText), then a linear or one-hidden-layer MLP head. The bag is stored sparsely
 * (feature ids + row ids), so a step costs O(n-grams × dim), not O(buckets).
 */
import { tf } from '@kiln/tensor';
import { hashedFeatures, type TokenizeOptions } from '../tokenize.js';
import { embeddingBag } from './embedding-bag.js';
import { JudgmentHeads } from './heads.js';
import { glorot, normalInit, zeros } from './init.js';
import type { LjpModel, LjpOutputs, ModelFactoryArgs, PreparedTexts } from './types.js';

export interface HashedNgramOptions {
  /** Hash buckets (feature space size). Default 4096. */
  buckets?: number;
  /** Embedding width. Default 32. */
  dim?: number;
  /** 'linear': heads read the pooled bag; 'mlp': one ReLU layer first. Default 'linear'. */
  head?: 'linear' | 'mlp';
  /** Width of the MLP layer. Default 32. */
  hidden?: number;
  tokenize?: TokenizeOptions;
}

interface PreparedBags extends PreparedTexts {
  ids: Int32Array[];
}

export class HashedNgramModel implements LjpModel {
  readonly kind = 'hashed-ngram';
  readonly numCharges: number;
  private readonly buckets: number;
  private readonly table: tf.Variable;
  private readonly w1?: tf.Variable;
  private readonly b1?: tf.Variable;
  private readonly heads: JudgmentHeads;
  private readonly opts: HashedNgramOptions;

  constructor(args: ModelFactoryArgs, options: HashedNgramOptions = {}) {
    this.opts = options;
    this.numCharges = args.numCharges;
    this.buckets = options.buckets ?? 4096;
    const dim = options.dim ?? 32;
    if (!Number.isInteger(this.buckets) || this.buckets < 2) throw new Error(`HashedNgramModel: buckets must be an integer ≥ 2, got ${this.buckets}`);
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`HashedNgramModel: dim must be a positive integer, got ${dim}`);
    this.table = normalInit(args.seed + 1, [this.buckets, dim], 0.1);
    let width = dim;
    if ((options.head ?? 'linear') === 'mlp') {
      const hidden = options.hidden ?? 32;
      this.w1 = glorot(args.seed + 2, [dim, hidden]);
      this.b1 = zeros([hidden]);
      width = hidden;
    }
    this.heads = new JudgmentHeads(args.seed, width, args.numCharges);
  }

  prepare(facts: string[]): PreparedBags {
    return { size: facts.length, ids: facts.map((f) => hashedFeatures(f, this.buckets, this.opts.tokenize)) };
  }

  forward(prepared: PreparedTexts, rows: ArrayLike<number>): LjpOutputs {
    return this.decode(this.encode(prepared, rows));
  }

  encode(prepared: PreparedTexts, rows: ArrayLike<number>): tf.Tensor2D {
    const bags = (prepared as PreparedBags).ids;
    let nnz = 0;
    for (let r = 0; r < rows.length; r++) nnz += bags[rows[r]!]!.length;
    const ids = new Int32Array(nnz);
    const seg = new Int32Array(nnz);
    const weights = new Float32Array(nnz);
    let o = 0;
    for (let r = 0; r < rows.length; r++) {
      const bag = bags[rows[r]!]!;
      ids.set(bag, o);
      seg.fill(r, o, o + bag.length);
      weights.fill(1 / Math.max(1, bag.length), o, o + bag.length); // mean pooling
      o += bag.length;
    }
    let h = embeddingBag(this.table as tf.Tensor2D, { ids, segments: seg, weights, numSegments: rows.length });
    if (this.w1 && this.b1) h = tf.relu(tf.add(tf.matMul(h, this.w1), this.b1)) as tf.Tensor2D;
    return h;
  }

  decode(hidden: tf.Tensor2D): LjpOutputs {
    return this.heads.apply(hidden);
  }

  encoderVariables(): tf.Variable[] {
    return [this.table, ...(this.w1 && this.b1 ? [this.w1, this.b1] : [])];
  }

  headVariables(): tf.Variable[] {
    return this.heads.variables();
  }

  trainableVariables(): tf.Variable[] {
    return [...this.encoderVariables(), ...this.headVariables()];
  }

  dispose(): void {
    for (const v of this.trainableVariables()) v.dispose();
  }
}
