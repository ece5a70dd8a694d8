/**
 * TextCNN (Kim, 2014), the standard neural baseline for CAIL charge prediction: hashed
 * token embeddings, parallel 1-D convolutions of several widths, max-over-time pooling,
 * then the shared heads. Tokens are characters for Chinese and words otherwise.
 */
import { tf } from '@kiln/tensor';
import { baseTokens, hashToken, type TokenMode } from '../tokenize.js';
import { embeddingBag } from './embedding-bag.js';
import { JudgmentHeads } from './heads.js';
import { glorot, normalInit, zeros } from './init.js';
import type { LjpModel, LjpOutputs, ModelFactoryArgs, PreparedTexts } from './types.js';

export interface TextCnnOptions {
  /** Hashed vocabulary size (id 0 is padding). Default 2048. */
  vocab?: number;
  /** Embedding width. Default 32. */
  embed?: number;
  /** Convolution widths. Default [2, 3, 4]. */
  widths?: number[];
  /** Filters per width. Default 32. */
  filters?: number;
  /** Texts are cut or padded to this many tokens. Default 96. */
  maxLength?: number;
  tokenMode?: TokenMode;
}

interface PreparedTokens extends PreparedTexts {
  ids: Int32Array[];
}

export class TextCnnModel implements LjpModel {
  readonly kind = 'text-cnn';
  readonly numCharges: number;
  private readonly vocab: number;
  private readonly maxLength: number;
  private readonly widths: number[];
  private readonly embedding: tf.Variable;
  private readonly kernels: tf.Variable[];
  private readonly biases: tf.Variable[];
  private readonly heads: JudgmentHeads;
  private readonly tokenMode: TokenMode;

  constructor(args: ModelFactoryArgs, options: TextCnnOptions = {}) {
    this.numCharges = args.numCharges;
    this.vocab = options.vocab ?? 2048;
    this.maxLength = options.maxLength ?? 96;
    this.widths = options.widths ?? [2, 3, 4];
    this.tokenMode = options.tokenMode ?? 'auto';
    const embed = options.embed ?? 32;
    const filters = options.filters ?? 32;
    if (this.widths.some((w) => !Number.isInteger(w) || w < 1 || w > this.maxLength)) {
      throw new Error(`TextCnnModel: widths must be integers in [1, maxLength], got ${JSON.stringify(this.widths)}`);
    }
    this.embedding = normalInit(args.seed + 1, [this.vocab, embed], 0.1);
    this.kernels = this.widths.map((w, i) => glorot(args.seed + 10 + i, [w, embed, filters]));
    this.biases = this.widths.map(() => zeros([filters]));
    this.heads = new JudgmentHeads(args.seed, filters * this.widths.length, args.numCharges);
  }

  prepare(facts: string[]): PreparedTokens {
    return {
      size: facts.length,
      ids: facts.map((f) => {
        const toks = baseTokens(f, this.tokenMode).slice(0, this.maxLength);
        const out = new Int32Array(this.maxLength); // zeros = padding
        toks.forEach((t, i) => {
          out[i] = 1 + (hashToken(t) % (this.vocab - 1));
        });
        return out;
      }),
    };
  }

  forward(prepared: PreparedTexts, rows: ArrayLike<number>): LjpOutputs {
    return this.decode(this.encode(prepared, rows));
  }

  encode(prepared: PreparedTexts, rows: ArrayLike<number>): tf.Tensor2D {
    const all = (prepared as PreparedTokens).ids;
    const ids = new Int32Array(rows.length * this.maxLength);
    for (let r = 0; r < rows.length; r++) ids.set(all[rows[r]!]!, r * this.maxLength);
    // A lookup is an embedding bag with one id per segment (see embedding-bag.ts for why).
    const segments = Int32Array.from({ length: ids.length }, (_, i) => i);
    const looked = embeddingBag(this.embedding as tf.Tensor2D, { ids, segments, weights: new Float32Array(ids.length).fill(1), numSegments: ids.length });
    const x = tf.reshape(looked, [rows.length, this.maxLength, -1]) as tf.Tensor3D;
    const pooled = this.kernels.map((k, i) => {
      const conv = tf.conv1d(x, k as tf.Tensor3D, 1, 'valid');
      return tf.max(tf.relu(tf.add(conv, this.biases[i]!)), 1) as tf.Tensor2D;
    });
    return tf.concat(pooled, 1) as tf.Tensor2D;
  }

  decode(hidden: tf.Tensor2D): LjpOutputs {
    return this.heads.apply(hidden);
  }

  encoderVariables(): tf.Variable[] {
    return [this.embedding, ...this.kernels, ...this.biases];
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
