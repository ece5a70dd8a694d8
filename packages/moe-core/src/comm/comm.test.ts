import { describe, expect, it } from 'vitest';
import { LocalCommunicator, reduceScatter } from './communicator.js';
import { runRanks } from './run-ranks.js';

const fixture = new URL('./comm.fixture.ts', import.meta.url).href;

describe('worker-thread communicator', () => {
  it('runs allGather, ragged allToAllV, allReduce and barrier across 3 ranks', async () => {
    type R = { gathered: number[][]; received: number[][]; reduced: number[]; maxed: number[] };
    const results = await runRanks<{ scale: number }, R>(3, 'collectivesProgram', { scale: 2 }, { module: fixture, backend: 'cpu' });
    expect(results).toHaveLength(3);
    results.forEach((res, rank) => {
      expect(res.gathered).toEqual([[0, 0.5], [2, 1.5], [4, 2.5]]);
      expect(res.received).toEqual([0, 1, 2].map((src) => new Array(src + 1).fill(10 * src + rank)));
      expect(res.reduced).toEqual([3, 3]);
      expect(res.maxed).toEqual([2]);
    });
  });

  it('reports a group that calls different collectives instead of hanging', async () => {
    await expect(runRanks(2, 'mismatchProgram', {}, { module: fixture, backend: 'cpu', timeoutMs: 5000 })).rejects.toThrow(/collective mismatch|never arrived/);
  });

  it('sub-groups (rows and columns of a 2×2 grid, a group leaving a rank out) run their own collectives interleaved with the world', async () => {
    type R = {
      rowRank: number;
      colRank: number;
      rowSum: number[];
      colGathered: number[][];
      rowExchanged: number[][];
      world: number[];
      three: number[] | null;
      alone: number[][];
    };
    const results = await runRanks<object, R>(4, 'subgroupProgram', {}, { module: fixture, backend: 'cpu', timeoutMs: 10_000 });
    results.forEach((res, rank) => {
      const row = rank < 2 ? [0, 1] : [2, 3];
      const col = rank % 2 === 0 ? [2, 0] : [3, 1];
      expect(res.rowRank).toBe(row.indexOf(rank));
      expect(res.colRank).toBe(col.indexOf(rank));
      expect(res.rowSum).toEqual([row[0]! + row[1]!]);
      expect(res.colGathered).toEqual(col.map((r) => [r]));
      expect(res.rowExchanged).toEqual(row.map((src) => [src, row.indexOf(rank)]));
      expect(res.world).toEqual([4]);
      expect(res.three).toEqual(rank === 3 ? null : [3]);
      expect(res.alone).toEqual([[rank]]);
    });
  });

  it('names ranks that split with different groups, and bad partitions', async () => {
    await expect(runRanks(2, 'disagreeingSubgroupsProgram', {}, { module: fixture, backend: 'cpu', timeoutMs: 5000 })).rejects.toThrow(/passed different groups/);
    const local = new LocalCommunicator();
    await expect(local.subgroups([[1]])).rejects.toThrow(/rank 1 is outside the group of 1/);
    await expect(local.subgroups([[0], [0]])).rejects.toThrow(/rank 0 is listed twice/);
    await expect(local.subgroups([[]])).rejects.toThrow(/at least one rank/);
    expect(await local.subgroups([[0]])).toBe(local);
  });

  it('the local communicator of one rank returns its input', async () => {
    const comm = new LocalCommunicator();
    expect(Array.from(await reduceScatter(comm, [Float32Array.from([1, 2])]))).toEqual([1, 2]);
    expect((await comm.allGather(Float32Array.from([3])))[0]).toEqual(Float32Array.from([3]));
  });
});
