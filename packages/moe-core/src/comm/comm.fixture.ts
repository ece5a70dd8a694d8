// Rank programs used by comm.test.ts (loaded inside worker threads).
import type { RankContext } from './run-ranks.js';

export async function collectivesProgram({ rank, size, comm }: RankContext, args: { scale: number }) {
  const gathered = await comm.allGather(Float32Array.from([rank * args.scale, rank + 0.5]));
  // rank r sends r+1 copies of (10·r + peer) to each peer: ragged all-to-all-v
  const chunks = Array.from({ length: size }, (_, peer) => new Float32Array(rank + 1).fill(10 * rank + peer));
  const received = await comm.allToAllV(chunks);
  const reduced = await comm.allReduce(Float32Array.from([rank, 1]));
  const maxed = await comm.allReduce(Float32Array.from([rank]), 'max');
  await comm.barrier();
  return {
    gathered: gathered.map((g) => Array.from(g)),
    received: received.map((r) => Array.from(r)),
    reduced: Array.from(reduced),
    maxed: Array.from(maxed),
  };
}

export async function mismatchProgram({ rank, comm }: RankContext) {
  // rank 0 calls a different collective than the others: the group is out of step
  if (rank === 0) await comm.barrier();
  else await comm.allReduce(new Float32Array(1));
  return rank;
}

/**
 * 4 ranks as a 2×2 grid: "row" groups {0,1}, {2,3} and "column" groups {0,2}, {1,3}, with
 * world, row and column collectives interleaved and two sub-group collectives in flight at once.
 */
export async function subgroupProgram({ rank, comm }: RankContext) {
  const row = comm.subgroup!(rank < 2 ? [0, 1] : [2, 3]);
  const col = comm.subgroup!(rank % 2 === 0 ? [0, 2] : [1, 3]);
  const rowSum = await row.allReduce(Float32Array.from([rank]));
  const [colGathered, rowExchanged] = await Promise.all([
    col.allGather(Float32Array.from([rank])),
    row.allToAllV([Float32Array.from([rank, 0]), Float32Array.from([rank, 1])]),
  ]);
  const world = await comm.allReduce(Float32Array.from([1]));
  const colOfRow = row.subgroup!([row.rank]);
  const alone = await colOfRow.allGather(Float32Array.from([rank]));
  return {
    rowRank: row.rank,
    colRank: col.rank,
    rowSum: Array.from(rowSum),
    colGathered: colGathered.map((g) => Array.from(g)),
    rowExchanged: rowExchanged.map((g) => Array.from(g)),
    world: Array.from(world),
    alone: alone.map((g) => Array.from(g)),
  };
}
