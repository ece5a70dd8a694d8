/**
 * Gradient accumulation and data parallelism, one mechanism: a step's M micro-batches (A on
 * each of R ranks, M = R·A) each add their gradients to a local sum; the sums travel packed in
 * one all-reduce (with the step's loss terms in the same message), are divided by M and
 * applied once. So R ranks with A micro-batches each take the step one process takes with
 * R·A micro-batches — the same micro-batches (see data/stream.ts), to float rounding.
 */
import { tf } from '@kiln/tensor';

/** What data parallelism needs of a communicator: an MPI world (@kiln/mpi), worker threads, or one process. */
export interface DataParallelGroup {
  rank: number;
  size: number;
  allReduce(data: Float32Array, op: 'sum'): Promise<Float32Array>;
}

/** The group of one process. */
export const SINGLE_PROCESS: DataParallelGroup = { rank: 0, size: 1, allReduce: async (data) => data };

/** The sum of the gradients of a step's micro-batches on this process, in the variables' order. */
export class GradientSum {
  private sums: tf.Tensor[] | null = null;
  /** The variables the loss reaches (tfjs gives no gradient for the others, e.g. an unused head). */
  private active: tf.Variable[] = [];
  constructor(private readonly vars: tf.Variable[]) {}

  /** Adds one micro-batch's gradients (and disposes them). */
  add(grads: tf.NamedTensorMap): void {
    if (!this.sums) {
      this.active = this.vars.filter((v) => grads[v.name]);
      this.sums = this.active.map((v) => grads[v.name]!);
      return;
    }
    const ordered = this.active.map((v) => {
      const g = grads[v.name];
      if (!g) throw new Error(`micro-batches disagree: no gradient for '${v.name}' this time`);
      return g;
    });
    this.sums = this.sums.map((s, i) => {
      const next = tf.add(s, ordered[i]!);
      s.dispose();
      ordered[i]!.dispose();
      return next;
    });
  }

  /**
   * The mean gradient over the `microBatches` of the step on every rank, keyed by variable
   * name in the variables' order (the order Adam's slots follow), plus `extras` (per-step
   * numbers such as loss sums) summed over the ranks.
   */
  async reduce(group: DataParallelGroup, microBatches: number, extras: number[]): Promise<{ grads: tf.NamedTensorMap; extras: number[] }> {
    if (!this.sums) throw new Error('reduce: no micro-batch was added');
    const sums = this.sums;
    this.sums = null;
    if (microBatches === 1 && group.size === 1) return { grads: Object.fromEntries(this.active.map((v, i) => [v.name, sums[i]!])), extras };
    const values = await Promise.all(sums.map((s) => s.data() as Promise<Float32Array>));
    const total = values.reduce((n, v) => n + v.length, 0);
    const packed = new Float32Array(total + extras.length);
    let at = 0;
    for (const v of values) {
      packed.set(v, at);
      at += v.length;
    }
    packed.set(extras, total);
    const summed = group.size > 1 ? await group.allReduce(packed, 'sum') : packed;
    const grads: tf.NamedTensorMap = {};
    at = 0;
    for (const [i, v] of this.active.entries()) {
      const part = summed.subarray(at, at + sums[i]!.size);
      const mean = new Float32Array(part.length);
      for (let k = 0; k < part.length; k++) mean[k] = part[k]! / microBatches;
      grads[v.name] = tf.tensor(mean, sums[i]!.shape, 'float32');
      at += part.length;
      sums[i]!.dispose();
    }
    return { grads, extras: Array.from(summed.subarray(total)) };
  }

  /** Reduces (see `reduce`), takes one optimizer step with the mean gradient, and returns the summed extras. */
  async step(optimizer: tf.Optimizer, group: DataParallelGroup, microBatches: number, extras: number[]): Promise<number[]> {
    const reduced = await this.reduce(group, microBatches, extras);
    optimizer.applyGradients(reduced.grads as unknown as Parameters<tf.Optimizer['applyGradients']>[0]);
    tf.dispose(Object.values(reduced.grads));
    return reduced.extras;
  }
}
