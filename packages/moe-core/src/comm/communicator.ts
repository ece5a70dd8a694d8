/**
 * The collective operations an expert-parallel group needs, kept minimal and asynchronous so
 * that a worker-thread group, an MPI binding or a NCCL binding can all implement it.
 *
 * Every rank of a group must call the same collectives in the same order (as with MPI);
 * buffers are plain Float32Arrays (counts travel as floats: exact below 2^24).
 */
export interface Communicator {
  /** This process's index in the group, 0 ≤ rank < size. */
  readonly rank: number;
  /** Number of ranks in the group. */
  readonly size: number;
  /** Every rank contributes `data`; each receives all contributions, indexed by rank. */
  allGather(data: Float32Array): Promise<Float32Array[]>;
  /**
   * `chunks[r]` goes to rank r (chunks may differ in length: all-to-all-v); the result's
   * entry r is what rank r sent to this rank.
   */
  allToAllV(chunks: Float32Array[]): Promise<Float32Array[]>;
  /** Element-wise reduction over ranks, summed in rank order so every rank gets identical bits. */
  allReduce(data: Float32Array, op?: 'sum' | 'max'): Promise<Float32Array>;
  /** Resolves once every rank has entered the barrier. */
  barrier(): Promise<void>;
  /**
   * The group of `ranks` (this group's ranks, this one among them) as a communicator of its
   * own, ranked in the order given — for the expert-tensor-parallel and expert-parallel
   * groups inside a world. Only the members call its collectives. Optional: a
   * communicator without it supports no sub-groups.
   */
  subgroup?(ranks: readonly number[]): Communicator;
}

/** Checks a sub-group's rank list against its parent group (an Error names what is wrong). */
export function checkSubgroup(parent: Pick<Communicator, 'rank' | 'size'>, ranks: readonly number[]): void {
  const seen = new Set<number>();
  for (const r of ranks) {
    if (!Number.isInteger(r) || r < 0 || r >= parent.size) throw new Error(`subgroup: rank ${r} is outside the group of ${parent.size}`);
    if (seen.has(r)) throw new Error(`subgroup: rank ${r} is listed twice in [${ranks}]`);
    seen.add(r);
  }
  if (!seen.has(parent.rank)) throw new Error(`subgroup: [${ranks}] does not contain this rank ${parent.rank}`);
}

/** Sums (or maxes) equally long arrays in the order given, so results are rank-independent. */
export function reduceArrays(parts: Float32Array[], op: 'sum' | 'max' = 'sum'): Float32Array {
  const first = parts[0];
  if (!first) throw new Error('reduceArrays: no parts to reduce');
  const out = new Float32Array(first);
  for (let p = 1; p < parts.length; p++) {
    const part = parts[p]!;
    if (part.length !== out.length) {
      throw new Error(`allReduce: rank ${p} contributed ${part.length} values, rank 0 ${out.length}`);
    }
    if (op === 'sum') for (let i = 0; i < out.length; i++) out[i]! += part[i]!;
    else for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i]!, part[i]!);
  }
  return out;
}

/**
 * Reduce-scatter built from all-to-all-v: rank r receives the sum over ranks of their
 * `chunks[r]` (summed in rank order). The combine step of the all-gather dispatcher.
 */
export async function reduceScatter(comm: Communicator, chunks: Float32Array[]): Promise<Float32Array> {
  const received = await comm.allToAllV(chunks);
  return reduceArrays(received, 'sum');
}

/** The trivial group of one rank: every collective returns (a copy of) its input. */
export class LocalCommunicator implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  async allGather(data: Float32Array): Promise<Float32Array[]> {
    return [data.slice()];
  }
  async allToAllV(chunks: Float32Array[]): Promise<Float32Array[]> {
    if (chunks.length !== 1) throw new Error(`allToAllV: expected 1 chunk for a group of 1, got ${chunks.length}`);
    return [chunks[0]!.slice()];
  }
  async allReduce(data: Float32Array): Promise<Float32Array> {
    return data.slice();
  }
  async barrier(): Promise<void> {}
  subgroup(ranks: readonly number[]): Communicator {
    checkSubgroup(this, ranks);
    return this;
  }
}
