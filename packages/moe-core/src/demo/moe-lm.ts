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
    const { dModel: d, heads } = this.shape;
    if (S > this.shape.context) throw new Error(`MoeLm: sequence length ${S} exceeds context ${this.shape.context}`);
    const dh = d / heads;
    const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([S, S]), -1, 0)), -1e9));
    // one-hot × embedding rather than a gather: the gather's gradient is a scatter-add, which
    // tfjs's CPU backends run one segment at a time
    const onehot = tf.oneHot(tf.reshape(tokens, [-1]), this.shape.vocab);
    let x = tf.add(tf.reshape(tf.matMul(onehot, this.embed), [B, S, d]), tf.slice(this.pos, [0, 0], [S, d]));
    let h = tf.reshape(x, [B * S, d]) as tf.Tensor2D;
    for (const b of this.blocks) {
      // separate q/k/v projections: a column split of a fused qkv copies element by element on tfjs's CPU backends
      const n = rmsNorm(h, b.norm1);
      const [q, k, v] = [b.wq, b.wk, b.wv].map((w) => tf.transpose(tf.reshape(tf.matMul(n, w), [B, S, heads, dh]), [0, 2, 1, 3]));
      const scores = tf.add(tf.mul(tf.matMul(q!, k!, false, true), 1 / Math.sqrt(dh)), mask);
      const att = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores, -1), v!), [0, 2, 1, 3]), [B * S, d]);
      h = tf.add(h, tf.matMul(att, b.proj));
      h = tf.add(h, b.moe.forward(rmsNorm(h, b.norm2) as tf.Tensor2D, { seqLength: S, training: options.training ?? true }));
    }
    x = rmsNorm(h, this.finalNorm);
    return tf.add(tf.matMul(x as tf.Tensor2D, this.embed, false, true), this.headBias) as tf.Tensor2D;
  }

  /** Mean next-token cross-entropy (nats) of inputs [B, S] against targets [B, S]. */
  loss(inputs: tf.Tensor2D, targets: tf.Tensor2D, options: { training?: boolean } = {}): tf.Scalar {
    const logits = this.logits(inputs, options);
    const labels = tf.oneHot(tf.reshape(targets, [-1]), this.shape.vocab);
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
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

function rmsNorm(x: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), scale));
}

