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
   * Splits this group into disjoint sub-groups (e.g. the EP, ETP, CP or DP groups of
   * `ParallelFolding`): a collective that every rank of this group calls with the same
   * `groups` (lists of this group's ranks; a rank may be in none). Resolves to the
   * communicator of the group that holds this rank, ranked in list order, or null. As with
   * MPI's `MPI_Comm_split`, the whole parent takes part, so an MPI implementation can build
   * the communicators. Optional: a communicator without it supports no sub-groups.
   */
  subgroups?(groups: readonly (readonly number[])[]): Promise<Communicator | null>;
}

/**
 * Checks a partition of a group into sub-groups (an Error names what is wrong) and returns
 * the group that holds `parent.rank`, or null.
 */
export function checkPartition(parent: Pick<Communicator, 'rank' | 'size'>, groups: readonly (readonly number[])[]): readonly number[] | null {
  if (!Array.isArray(groups)) throw new Error('subgroups: groups must be an array of rank lists');
  const seen = new Set<number>();
  let mine: readonly number[] | null = null;
  for (const g of groups) {
    if (!Array.isArray(g) || g.length === 0) throw new Error(`subgroups: every group needs at least one rank, got ${JSON.stringify(g)}`);
    for (const r of g) {
      if (!Number.isInteger(r) || r < 0 || r >= parent.size) throw new Error(`subgroups: rank ${r} is outside the group of ${parent.size}`);
      if (seen.has(r)) throw new Error(`subgroups: rank ${r} is listed twice in ${JSON.stringify(groups)}`);
      seen.add(r);
    }
    if (g.includes(parent.rank)) mine = g;
  }
  return mine;
}

/** A partition as one array (group count, then each group's size and members), to compare across ranks. */
export function partitionFingerprint(groups: readonly (readonly number[])[]): Float32Array {
  return Float32Array.from([groups.length, ...groups.flatMap((g) => [g.length, ...g])]);
}

/**
 * Checks that every rank of `comm` passed the same partition (one all-gather): the mistake
 * that would otherwise pair collectives of different groups and hang.
 */
export async function agreeOnPartition(comm: Communicator, groups: readonly (readonly number[])[]): Promise<void> {
  const mine = partitionFingerprint(groups);
  const all = await comm.allGather(mine);
  const differ = all.flatMap((f, r) => (f.length === mine.length && f.every((v, i) => v === mine[i]) ? [] : [r]));
  if (differ.length > 0) throw new Error(`subgroups: rank ${comm.rank} and rank(s) ${differ.join(', ')} passed different groups (${JSON.stringify(groups)} here)`);
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
  async subgroups(groups: readonly (readonly number[])[]): Promise<Communicator | null> {
    return checkPartition(this, groups) ? this : null;
  }
}
