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
 * 4 ranks as a 2×2 grid: "row" groups {0,1}, {2,3} and "column" groups {0,2}, {1,3} (the
 * column listed in reverse), split collectively by every rank, with world, row and column
 * collectives interleaved and two sub-group collectives in flight at once; then a group that
 * leaves rank 3 out, and one-rank groups split from the rows.
 */
export async function subgroupProgram({ rank, comm }: RankContext) {
  const row = (await comm.subgroups!([
    [0, 1],
    [2, 3],
  ]))!;
  const col = (await comm.subgroups!([
    [2, 0],
    [3, 1],
  ]))!;
  const rowSum = await row.allReduce(Float32Array.from([rank]));
  const [colGathered, rowExchanged] = await Promise.all([
    col.allGather(Float32Array.from([rank])),
    row.allToAllV([Float32Array.from([rank, 0]), Float32Array.from([rank, 1])]),
  ]);
  const world = await comm.allReduce(Float32Array.from([1]));
  const firstThree = await comm.subgroups!([[0, 1, 2]]);
  const three = firstThree ? Array.from(await firstThree.allReduce(Float32Array.from([rank]))) : null;
  const alone = (await row.subgroups!([[0], [1]]))!;
  const aloneGathered = await alone.allGather(Float32Array.from([rank]));
  return {
    rowRank: row.rank,
    colRank: col.rank,
    rowSum: Array.from(rowSum),
    colGathered: colGathered.map((g) => Array.from(g)),
    rowExchanged: rowExchanged.map((g) => Array.from(g)),
    world: Array.from(world),
    three,
    alone: aloneGathered.map((g) => Array.from(g)),
  };
}

/** Rank 1 passes a different partition than the others: every rank must fail, naming it. */
export async function disagreeingSubgroupsProgram({ rank, comm }: RankContext) {
  await comm.subgroups!(rank === 1 ? [[0], [1]] : [[0, 1]]);
  return rank;
}
