import { tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';
import { reduceArrays } from '../comm/communicator.js';
import type { CommStep } from './staged.js';

/**
 * Expert tensor parallelism's two collectives around the expert MLP (Megatron-Core with
 * `expert_tensor_parallel_size` > 1): every rank of an ETP group holds a slice of the same
 * experts' FFN (fc1 by columns, fc2 by rows), so
 * - before the experts, the group all-gathers the rows each member received from the token
 *   dispatcher, regrouped expert-major ([local expert][member]) for the grouped GEMM;
 * - after them, each member holds a partial sum of every row's output (its fc2 rows' share),
 *   and a reduce-scatter sums the partials and returns each member its own rows.
 * Each is the other's adjoint, which is how backward runs them.
 */
export class EtpExchange {
  /** counts[member][local expert]: rows each member contributed, from the last gather. */
  private counts: number[][] = [];
  private ownRows = 0;

  constructor(
    readonly comm: Communicator,
    readonly numLocalExperts: number,
    readonly hidden: number,
  ) {}

  /** Rows per local expert after the gather (all members'), the grouped GEMM's group sizes. */
  rowsPerLocalExpert(): Int32Array {
    if (this.counts.length === 0) throw new Error('EtpExchange: rowsPerLocalExpert before the gather ran');
    const out = new Int32Array(this.numLocalExperts);
    for (const c of this.counts) for (let l = 0; l < this.numLocalExperts; l++) out[l]! += c[l]!;
    return out;
  }

  /** The all-gather step: `input` [own rows, H] with `localRows()` per expert → `output` [all members' rows, H]. */
  gatherStep(input: string, output: string, localRows: () => ArrayLike<number>): CommStep {
    return {
      kind: 'comm',
      name: 'etpAllGather',
      inputs: [input],
      outputs: [output],
      forward: async ([x]) => {
        const mine = Float32Array.from(localRows());
        if (mine.length !== this.numLocalExperts) throw new Error(`EtpExchange: ${mine.length} row counts for ${this.numLocalExperts} local experts`);
        const data = (await x!.data()) as Float32Array;
        const [counts, blocks] = await Promise.all([this.comm.allGather(mine), this.comm.allGather(data)]);
        this.counts = counts.map((c) => Array.from(c, (v) => Math.round(v)));
        this.ownRows = x!.shape[0]!;
        return [this.regroup(blocks)];
      },
      backward: async ([dy]) => [await this.reduceScatter(dy!)],
    };
  }

  /** The reduce-scatter step: `input` partial outputs [all members' rows, H] → `output` [own rows, H], summed over members. */
  scatterStep(input: string, output: string): CommStep {
    return {
      kind: 'comm',
      name: 'etpReduceScatter',
      inputs: [input],
      outputs: [output],
      forward: async ([x]) => [await this.reduceScatter(x!)],
      backward: async ([dy]) => {
        const blocks = await this.comm.allGather((await dy!.data()) as Float32Array);
        return [this.regroup(blocks)];
      },
    };
  }

  private async reduceScatter(x: tf.Tensor): Promise<tf.Tensor2D> {
    const parts = this.ungroup((await x.data()) as Float32Array);
    const summed = reduceArrays(await this.comm.allToAllV(parts));
    return tf.tensor2d(summed, [this.ownRows, this.hidden]);
  }

  /** Member-major blocks (each [local expert] rows) → one expert-major [local expert][member] array. */
  private regroup(blocks: Float32Array[]): tf.Tensor2D {
    const H = this.hidden;
    const total = blocks.reduce((n, b) => n + b.length, 0);
    const out = new Float32Array(total);
    const offsets = blocks.map(() => 0);
    let o = 0;
    for (let l = 0; l < this.numLocalExperts; l++) {
      blocks.forEach((b, m) => {
        const n = this.counts[m]![l]! * H;
        out.set(b.subarray(offsets[m]!, offsets[m]! + n), o);
        offsets[m]! += n;
        o += n;
      });
    }
    return tf.tensor2d(out, [total / H, H]);
  }

  /** The inverse of `regroup`: an expert-major array → each member's block of rows. */
  private ungroup(data: Float32Array): Float32Array[] {
    const H = this.hidden;
    const parts = this.counts.map((c) => new Float32Array(c.reduce((a, b) => a + b, 0) * H));
    const offsets = parts.map(() => 0);
    let o = 0;
    for (let l = 0; l < this.numLocalExperts; l++) {
      parts.forEach((p, m) => {
        const n = this.counts[m]![l]! * H;
        p.set(data.subarray(o, o + n), offsets[m]!);
        offsets[m]! += n;
        o += n;
      });
    }
    if (o !== data.length) throw new Error(`EtpExchange: ${data.length / H} rows, the gather produced ${o / H}`);
    return parts;
  }
}
