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

  it('the local communicator of one rank returns its input', async () => {
    const comm = new LocalCommunicator();
    expect(Array.from(await reduceScatter(comm, [Float32Array.from([1, 2])]))).toEqual([1, 2]);
    expect((await comm.allGather(Float32Array.from([3])))[0]).toEqual(Float32Array.from([3]));
  });
});
