import { type Rng, tf } from '@kiln/tensor';
import { type MoEConfig, type MoEConfigInput, validateMoEConfig } from '../config.js';
import { fc1Width } from '../experts/activation.js';
import { MoELayer } from '../layer/moe-layer.js';
import { type MoEWeights, initMoEWeights, namedWeights, weightList } from '../layer/weights.js';

/** Shape of the demo language model. */
export interface MoeLmShape {
  /** Transformer blocks (attention + MoE FFN each). */
  layers: number;
  dModel: number;
  heads: number;
  /** Context length in tokens (bytes). */
  context: number;
  /** Vocabulary: 256 for bytes. */
  vocab: number;
  /** The MoE FFN of every block (hiddenSize is set to dModel, numLayers to layers). */
  moe: Omit<MoEConfigInput, 'hiddenSize'>;
}

interface Block {
  norm1: tf.Variable;
  wq: tf.Variable;
  wk: tf.Variable;
  wv: tf.Variable;
  proj: tf.Variable;
  norm2: tf.Variable;
  moe: MoELayer;
  moeWeights: MoEWeights;
}

/**
 * A small decoder-only transformer whose FFNs are MoE layers: token + learned position
 * embeddings, per block RMSNorm → causal multi-head attention → residual, RMSNorm → MoE →
 * residual, final RMSNorm, output projection tied to the embedding.
 */
export class MoeLm {
  readonly embed: tf.Variable;
  readonly pos: tf.Variable;
  readonly finalNorm: tf.Variable;
  /** Output bias: carries the unigram distribution, so hidden states need no shared direction for it. */
  readonly headBias: tf.Variable;
  readonly blocks: Block[];
  readonly moeConfig: MoEConfig;

  constructor(
    readonly shape: MoeLmShape,
    rng: Rng,
  ) {
    const { dModel: d, layers, heads, context, vocab } = shape;
    if (d % heads !== 0) throw new Error(`MoeLm: dModel ${d} is not divisible by heads ${heads}`);
    this.moeConfig = validateMoEConfig({ ...shape.moe, hiddenSize: d, numLayers: layers } as MoEConfigInput);
    const std = 0.02;
    this.embed = tf.variable(rng.normal([vocab, d], 0, std));
    this.pos = tf.variable(rng.normal([context, d], 0, std));
    this.finalNorm = tf.variable(tf.ones([d]));
    this.headBias = tf.variable(tf.zeros([vocab]));
    this.blocks = [];
    for (let l = 0; l < layers; l++) {
      const moeWeights = initMoEWeights(this.moeConfig, rng.fork(), { std });
      this.blocks.push({
        norm1: tf.variable(tf.ones([d])),
        wq: tf.variable(rng.normal([d, d], 0, std)),
        wk: tf.variable(rng.normal([d, d], 0, std)),
        wv: tf.variable(rng.normal([d, d], 0, std)),
        proj: tf.variable(rng.normal([d, d], 0, std / Math.sqrt(2 * layers))),
        norm2: tf.variable(tf.ones([d])),
        moe: new MoELayer(this.moeConfig, moeWeights, { rng: rng.fork(), layerNumber: l + 1 }),
        moeWeights,
      });
    }
  }

  trainableVariables(): tf.Variable[] {
    const out = [this.embed, this.pos, this.finalNorm, this.headBias];
    for (const b of this.blocks) out.push(b.norm1, b.wq, b.wk, b.wv, b.proj, b.norm2, ...weightList(b.moeWeights));
    return out;
  }

  /** Checkpoint names → tensors. */
  namedTensors(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = { 'embed.weight': this.embed, 'pos.weight': this.pos, 'final_norm.weight': this.finalNorm, 'output.bias': this.headBias };
    this.blocks.forEach((b, l) => {
      const p = `layers.${l}.`;
      Object.assign(out, {
        [`${p}input_norm.weight`]: b.norm1,
        [`${p}attention.q.weight`]: b.wq,
        [`${p}attention.k.weight`]: b.wk,
        [`${p}attention.v.weight`]: b.wv,
        [`${p}attention.proj.weight`]: b.proj,
        [`${p}pre_mlp_norm.weight`]: b.norm2,
        ...namedWeights(b.moeWeights, `${p}mlp.`),
      });
    });
    return out;
  }

  /**
   * tokens [B, S] int32 → logits [B·S, vocab]. `training: false` runs the MoE layers in
   * evaluation mode (no jitter, no aux / z losses, no token counting).
   */
  logits(tokens: tf.Tensor2D, options: { training?: boolean } = {}): tf.Tensor2D {
    const [B, S] = tokens.shape;
    if (S > this.shape.context) throw new Error(`MoeLm: sequence length ${S} exceeds context ${this.shape.context}`);
    const { heads, vocab } = this.shape;
    const positions = Int32Array.from({ length: S }, (_, i) => i);
    let h = embedTokens(tokens, positions, this.embed, this.pos, vocab);
    const whole: AttentionSpan[] = [{ start: 0, length: S, firstPosition: 0 }];
    for (const b of this.blocks) {
      const [q, k, v] = qkvProjection(h, b.norm1, b.wq, b.wk, b.wv);
      h = attentionResidual(h, q!, k!, v!, b.proj, { batch: B, heads, spans: whole, keyLength: S });
      h = tf.add(h, b.moe.forward(rmsNorm(h, b.norm2) as tf.Tensor2D, { seqLength: S, order: 'bs', training: options.training ?? true }));
    }
    return lmHead(h, this.finalNorm, this.embed, this.headBias);
  }

  /** Mean next-token cross-entropy (nats) of inputs [B, S] against targets [B, S]. */
  loss(inputs: tf.Tensor2D, targets: tf.Tensor2D, options: { training?: boolean } = {}): tf.Scalar {
    return crossEntropy(this.logits(inputs, options), targets, this.shape.vocab);
  }

  /**
   * Model FLOPs per trained token (forward + backward = 3 × forward): 2 per multiply–add of
   * every weight a token touches (attention projections, the k routed experts and shared
   * experts, router, output head) plus the attention score and value products (causal
   * attention computed densely, as here).
   */
  flopsPerToken(seqLength = this.shape.context): number {
    const { dModel: d, layers, vocab } = this.shape;
    const c = this.moeConfig;
    const expert = d * fc1Width(c.activation, c.ffnHiddenSize) + c.ffnHiddenSize * d;
    const shared = c.sharedExpertSize ? d * fc1Width(c.activation, c.sharedExpertSize) + c.sharedExpertSize * d + (c.sharedExpertGate ? d : 0) : 0;
    const perLayer = 4 * d * d + c.numExperts * d + c.topk * expert + shared;
    const attention = 2 * seqLength * d; // QKᵀ and AV per token
    return 3 * 2 * (layers * (perLayer + attention) + d * vocab);
  }

  /** Active parameters per token and total parameters (embeddings included). */
  parameterCounts(): { total: number; active: number } {
    const total = this.trainableVariables().reduce((n, v) => n + v.size, 0);
    const c = this.moeConfig;
    const expert = this.shape.dModel * fc1Width(c.activation, c.ffnHiddenSize) + c.ffnHiddenSize * this.shape.dModel;
    return { total, active: total - this.shape.layers * (c.numExperts - c.topk) * expert };
  }

  /**
   * Continues `prompt` by `n` bytes, sampling from softmax(logits / temperature) with `rng`
   * (temperature 0 = greedy).
   */
  generate(prompt: Uint8Array, n: number, options: { temperature?: number; rng?: Rng } = {}): Uint8Array {
    const temperature = options.temperature ?? 0;
    const out = Array.from(prompt);
    for (let i = 0; i < n; i++) {
      const ctx = out.slice(-this.shape.context);
      const probs = tf.tidy(() => {
        const logits = tf.slice(this.logits(tf.tensor2d(ctx, [1, ctx.length], 'int32'), { training: false }), [ctx.length - 1, 0], [1, -1]);
        return temperature > 0 ? tf.softmax(tf.div(logits, temperature)).dataSync() : logits.dataSync();
      });
      let next = 0;
      if (temperature > 0 && options.rng) {
        let u = options.rng.next();
        for (next = 0; next < probs.length - 1; next++) {
          u -= probs[next]!;
          if (u <= 0) break;
        }
      } else {
        for (let v = 1; v < probs.length; v++) if (probs[v]! > probs[next]!) next = v;
      }
      out.push(next);
    }
    return Uint8Array.from(out.slice(prompt.length));
  }
}

/** RMSNorm over the last axis with a learned scale. */
export function rmsNorm(x: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), scale));
}

/*
 * The model's pieces as functions of their weights, so that a staged (context- or
 * expert-parallel) step can differentiate each piece with the weights as inputs; `MoeLm.logits`
 * composes the same functions.
 */

/**
 * tokens [B, L] at sequence `positions` (L of them, the same for every row) → hidden rows
 * [B·L, d]: token embedding plus learned position embedding. One-hot × embedding rather than
 * a gather: the gather's gradient is a scatter-add, which tfjs's CPU backends run one segment
 * at a time.
 */
export function embedTokens(tokens: tf.Tensor2D, positions: Int32Array, embed: tf.Tensor, pos: tf.Tensor, vocab: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, L] = tokens.shape;
    const d = embed.shape[1]!;
    const tokenRows = tf.reshape(tf.matMul(tf.oneHot(tf.reshape(tokens, [-1]), vocab), embed as tf.Tensor2D), [B, L, d]);
    const positionRows = tf.matMul(tf.oneHot(tf.tensor1d(positions, 'int32'), pos.shape[0]!), pos as tf.Tensor2D);
    return tf.reshape(tf.add(tokenRows, positionRows), [B * L, d]) as tf.Tensor2D;
  });
}

/**
 * Pre-attention RMSNorm and the q, k, v projections: h [rows, d] → three [rows, d]. Separate
 * projections: a column split of a fused qkv copies element by element on tfjs's CPU backends.
 */
export function qkvProjection(h: tf.Tensor, norm: tf.Tensor, wq: tf.Tensor, wk: tf.Tensor, wv: tf.Tensor): tf.Tensor2D[] {
  return tf.tidy(() => {
    const n = rmsNorm(h, norm) as tf.Tensor2D;
    return [wq, wk, wv].map((w) => tf.matMul(n, w as tf.Tensor2D));
  });
}

/**
 * A run of consecutive query tokens of every sequence: local rows [start, start + length) of
 * each sequence sit at sequence positions [firstPosition, firstPosition + length).
 */
export interface AttentionSpan {
  start: number;
  length: number;
  firstPosition: number;
}

/**
 * Causal multi-head attention of local queries over keys/values at positions [0, keyLength),
 * plus the output projection and the residual: h + proj(softmax(q·kᵀ/√dh + mask)·v).
 * q and h are [batch·localLength, d] (per sequence, its local rows), k and v
 * [batch·keyLength, d] in sequence order. Each span's queries attend to the keys up to their
 * own position only: keys [0, firstPosition + length), masked causally within the last
 * `length` (a span at the start of the sequence is ordinary causal attention; the
 * context-parallel chunks of the load-balanced split are spans further in).
 */
export function attentionResidual(
  h: tf.Tensor,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  proj: tf.Tensor,
  o: { batch: number; heads: number; spans: AttentionSpan[]; keyLength: number },
): tf.Tensor2D {
  return tf.tidy(() => {
    const d = q.shape[1]!;
    const dh = d / o.heads;
    const local = q.shape[0]! / o.batch;
    const heads = (x: tf.Tensor, rows: number) => tf.transpose(tf.reshape(x, [o.batch, rows, o.heads, dh]), [0, 2, 1, 3]);
    const [qh, kh, vh] = [heads(q, local), heads(k, o.keyLength), heads(v, o.keyLength)];
    const outs = o.spans.map((span) => {
      const visible = span.firstPosition + span.length;
      if (visible > o.keyLength) throw new Error(`attention: a span reaches position ${visible}, beyond the ${o.keyLength} keys`);
      const qs = o.spans.length === 1 && span.length === local ? qh : tf.slice(qh, [0, 0, span.start, 0], [-1, -1, span.length, -1]);
      const ks = visible === o.keyLength ? kh : tf.slice(kh, [0, 0, 0, 0], [-1, -1, visible, -1]);
      const vs = visible === o.keyLength ? vh : tf.slice(vh, [0, 0, 0, 0], [-1, -1, visible, -1]);
      // query i (position firstPosition + i) sees keys j ≤ firstPosition + i
      const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([span.length, visible]), -1, span.firstPosition)), -1e9);
      const scores = tf.add(tf.mul(tf.matMul(qs, ks, false, true), 1 / Math.sqrt(dh)), mask);
      return tf.matMul(tf.softmax(scores, -1), vs);
    });
    const att = outs.length === 1 ? outs[0]! : tf.concat(outs, 2);
    return tf.add(h, tf.matMul(tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [o.batch * local, d]), proj as tf.Tensor2D)) as tf.Tensor2D;
  });
}

/** Final RMSNorm and the output projection tied to the embedding, plus the output bias: [rows, d] → logits [rows, vocab]. */
export function lmHead(h: tf.Tensor, finalNorm: tf.Tensor, embed: tf.Tensor, headBias: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.add(tf.matMul(rmsNorm(h, finalNorm) as tf.Tensor2D, embed as tf.Tensor2D, false, true), headBias) as tf.Tensor2D);
}

/** Mean next-token cross-entropy (nats) of logits [rows, vocab] against targets (rows of them). */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor, vocab: number): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [-1]), vocab), logits) as tf.Scalar);
}
