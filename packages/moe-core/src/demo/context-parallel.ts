/**
 * Context parallelism for the demo LM, with Megatron-LM's semantics: the sequence is cut into
 * 2·cp chunks and CP rank r keeps chunks r and 2·cp − 1 − r (`get_batch_on_this_cp_rank`), so
 * that under a causal mask every rank does the same attention work (chunk r attends to r + 1
 * chunks, chunk 2cp − 1 − r to 2cp − r: 2cp + 1 in all). Attention sees the whole context by
 * all-gathering K and V over the CP group (Transformer Engine's `cp_comm_type="all_gather"`);
 * backward returns each rank the summed gradients of its own K/V rows (a reduce-scatter).
 */
import { tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';
import { reduceArrays } from '../comm/communicator.js';
import type { CommStep } from '../dispatch/staged.js';
import type { AttentionSpan } from './moe-lm.js';

/** The chunk length of a sequence of `seqLength` tokens over `cp` ranks (an Error when it does not split into 2·cp chunks). */
export function contextParallelChunk(seqLength: number, cp: number): number {
  if (!Number.isInteger(cp) || cp < 1) throw new Error(`context parallel: cp must be a positive integer, got ${cp}`);
  if (seqLength % (2 * cp) !== 0) throw new Error(`context parallel: the sequence length ${seqLength} must be divisible by 2·cp = ${2 * cp}`);
  return seqLength / (2 * cp);
}

/** The two chunks of CP rank `rank`, in local order: r, then 2·cp − 1 − r. */
export function contextParallelChunks(cp: number, rank: number): [number, number] {
  if (!Number.isInteger(rank) || rank < 0 || rank >= cp) throw new Error(`context parallel: rank ${rank} is outside a CP group of ${cp}`);
  return [rank, 2 * cp - 1 - rank];
}

/** Sequence positions of CP rank `rank`'s local tokens, in local order. */
export function contextParallelPositions(seqLength: number, cp: number, rank: number): Int32Array {
  const c = contextParallelChunk(seqLength, cp);
  const out = new Int32Array(2 * c);
  contextParallelChunks(cp, rank).forEach((chunk, j) => {
    for (let i = 0; i < c; i++) out[j * c + i] = chunk * c + i;
  });
  return out;
}

/** The attention spans of CP rank `rank`'s local queries (one per chunk). */
export function contextParallelSpans(seqLength: number, cp: number, rank: number): AttentionSpan[] {
  const c = contextParallelChunk(seqLength, cp);
  return contextParallelChunks(cp, rank).map((chunk, j) => ({ start: j * c, length: c, firstPosition: chunk * c }));
}

/**
 * Megatron's `get_batch_on_this_cp_rank` for a [batch, seqLength] row-major batch: the
 * [batch, 2·chunk] columns of CP rank `rank`.
 */
export function shardSequence(data: Int32Array, batch: number, seqLength: number, cp: number, rank: number): Int32Array {
  if (data.length !== batch * seqLength) throw new Error(`shardSequence: ${data.length} values are not [${batch}, ${seqLength}]`);
  const positions = contextParallelPositions(seqLength, cp, rank);
  const out = new Int32Array(batch * positions.length);
  for (let b = 0; b < batch; b++) for (let i = 0; i < positions.length; i++) out[b * positions.length + i] = data[b * seqLength + positions[i]!]!;
  return out;
}

/**
 * The K/V exchange of one attention layer as a StagedGraph communication step: inputs
 * k, v [batch·2·chunk, width] (this rank's rows), outputs the whole sequence's
 * [batch·seqLength, width] in sequence order. Backward: each member's gradient rows go back
 * to their owner and are summed there (members in rank order, so every run sums alike).
 */
export class KvAllGather {
  private readonly positions: Int32Array[];

  constructor(
    readonly group: Communicator,
    readonly batch: number,
    readonly seqLength: number,
    readonly width: number,
  ) {
    this.positions = Array.from({ length: group.size }, (_, r) => contextParallelPositions(seqLength, group.size, r));
  }

  step(name: string, inputs: [string, string], outputs: [string, string]): CommStep {
    return {
      kind: 'comm',
      name,
      inputs,
      outputs,
      forward: async (xs) => {
        const local = await Promise.all(xs.map((x) => x.data() as Promise<Float32Array>));
        const gathered = await Promise.all(local.map((l) => this.group.allGather(l)));
        return gathered.map((parts) => this.assemble(parts));
      },
      backward: async (dys) => {
        const full = await Promise.all(dys.map((d) => d.data() as Promise<Float32Array>));
        const received = await Promise.all(full.map((f) => this.group.allToAllV(this.positions.map((_, r) => this.rowsOf(f, r)))));
        return received.map((parts) => tf.tensor2d(reduceArrays(parts), [this.batch * this.positions[this.group.rank]!.length, this.width]));
      },
    };
  }

  /** Members' local rows → [batch·seqLength, width] in sequence order. */
  private assemble(parts: Float32Array[]): tf.Tensor2D {
    const { batch, seqLength, width } = this;
    const out = new Float32Array(batch * seqLength * width);
    parts.forEach((part, r) => {
      const pos = this.positions[r]!;
      if (part.length !== batch * pos.length * width) throw new Error(`KvAllGather: rank ${r} sent ${part.length} values, expected ${batch * pos.length * width}`);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < pos.length; i++) {
          const from = (b * pos.length + i) * width;
          out.set(part.subarray(from, from + width), (b * seqLength + pos[i]!) * width);
        }
      }
    });
    return tf.tensor2d(out, [batch * seqLength, width]);
  }

  /** The rows of member `r`'s positions from a [batch·seqLength, width] array, in its local order. */
  private rowsOf(full: Float32Array, r: number): Float32Array {
    const { batch, seqLength, width } = this;
    const pos = this.positions[r]!;
    const out = new Float32Array(batch * pos.length * width);
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < pos.length; i++) {
        const from = (b * seqLength + pos[i]!) * width;
        out.set(full.subarray(from, from + width), (b * pos.length + i) * width);
      }
    }
    return out;
  }
}
