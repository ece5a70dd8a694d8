/**
 * Aux-loss-free load balancing (DeepSeek-V3, Megatron's `get_updated_expert_bias`): once per
 * global batch, every expert's bias moves by `rate` toward balance:
 *   bias_i ← bias_i + rate · sign(mean_j(count_j) − count_i).
 * The bias only shifts which experts are chosen, never the gate values (see topkRouting).
 */
import { tf } from '@kiln/tensor';

/**
 * The updated bias. `tokensPerExpert` is [experts] or [layers, experts] (the mean is over the
 * last axis); the result has the type of `bias`: a tensor for a tensor, else a number[].
 * An expert exactly at the mean keeps its bias (sign(0) = 0).
 */
export function updateExpertBias(
  tokensPerExpert: tf.Tensor | ArrayLike<number>,
  bias: tf.Tensor | ArrayLike<number>,
  rate: number,
): tf.Tensor | number[] {
  if (!(Number.isFinite(rate) && rate >= 0)) throw new Error(`updateExpertBias: rate must be a number ≥ 0, got ${rate}`);
  const countsShape = tokensPerExpert instanceof tf.Tensor ? tokensPerExpert.shape : [tokensPerExpert.length];
  const biasShape = bias instanceof tf.Tensor ? bias.shape : [bias.length];
  if (countsShape.join(',') !== biasShape.join(',')) {
    throw new Error(`updateExpertBias: tokensPerExpert shape [${countsShape}] differs from bias shape [${biasShape}]`);
  }
  const counts = Float64Array.from(tokensPerExpert instanceof tf.Tensor ? (tokensPerExpert.dataSync() as ArrayLike<number>) : tokensPerExpert);
  const b = Float32Array.from(bias instanceof tf.Tensor ? (bias.dataSync() as ArrayLike<number>) : bias);
  const e = countsShape[countsShape.length - 1]!;
  const out = new Float32Array(b.length);
  for (let row = 0; row < counts.length / e; row++) {
    let sum = 0;
    for (let i = 0; i < e; i++) sum += counts[row * e + i]!;
    // fp32 mean as torch computes it on an fp32 counts tensor.
    const mean = Math.fround(Math.fround(sum) / e);
    for (let i = 0; i < e; i++) {
      const j = row * e + i;
      out[j] = Math.fround(b[j]! + Math.sign(Math.fround(mean - counts[j]!)) * rate);
    }
  }
  if (bias instanceof tf.Tensor) return tf.tensor(out, bias.shape, 'float32');
  return Array.from(out);
}

/**
 * The router's expert-bias state: counts of routed tokens accumulated over the micro-batches
 * of a global batch (training forwards only), then one `update()` per global batch.
 */
export class ExpertBiasState {
  readonly numExperts: number;
  readonly rate: number;
  bias: Float32Array;
  localTokensPerExpert: Float64Array;

  constructor(numExperts: number, rate: number) {
    if (!Number.isInteger(numExperts) || numExperts < 1) throw new Error(`ExpertBiasState: numExperts must be a positive integer, got ${numExperts}`);
    this.numExperts = numExperts;
    this.rate = rate;
    this.bias = new Float32Array(numExperts);
    this.localTokensPerExpert = new Float64Array(numExperts);
  }

  /** Add one micro-batch's routing map (or counts) to the local counts. */
  accumulate(routingMapOrCounts: tf.Tensor | ArrayLike<number>): void {
    let counts: ArrayLike<number>;
    if (routingMapOrCounts instanceof tf.Tensor && routingMapOrCounts.rank === 2) {
      counts = tf.tidy(() => tf.sum(tf.cast(routingMapOrCounts, 'float32'), 0)).dataSync() as Float32Array;
    } else {
      counts = routingMapOrCounts instanceof tf.Tensor ? (routingMapOrCounts.dataSync() as Float32Array) : routingMapOrCounts;
    }
    if (counts.length !== this.numExperts) throw new Error(`ExpertBiasState.accumulate: ${counts.length} counts for ${this.numExperts} experts`);
    for (let i = 0; i < this.numExperts; i++) this.localTokensPerExpert[i]! += counts[i]!;
  }

  /**
   * Apply the update with the counts summed over the tp·dp·cp ranks (`allReduce`, identity on
   * one rank), then zero the local counts.
   */
  update(allReduce: (counts: Float64Array) => ArrayLike<number> = (c) => c): Float32Array {
    const global = allReduce(this.localTokensPerExpert);
    this.bias = Float32Array.from(updateExpertBias(global, this.bias, this.rate) as number[]);
    this.localTokensPerExpert = new Float64Array(this.numExperts);
    return this.bias;
  }
}
