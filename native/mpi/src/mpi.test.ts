/**
 * Multi-rank tests: each spawns `mpirun -np N` on a program in test/ that imports the
 * built package, and checks what every rank printed. Skipped, with the reason printed,
 * where mpirun or the addon is missing (CI installs Open MPI, so they run there).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMpiBinding } from './binding.js';
import { launchedByMpirun, mpiLaunch } from './launch.js';

const root = join(import.meta.dirname, '..');
const mpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
const binding = loadMpiBinding();
const skipReason = mpirun.status !== 0 ? 'mpirun not found (install openmpi-bin)' : !binding.ok ? binding.reason : '';
if (skipReason) console.log(`[skip] MPI tests skipped: ${skipReason}`);

function runRanks(np: number, program: string, args: string[] = [], env: Record<string, string> = {}) {
  const started = Date.now();
  // --oversubscribe: more ranks than cores; --allow-run-as-root: CI runs as root.
  const result = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), process.execPath, join(root, 'test', program), ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    env: { ...process.env, ...env },
  });
  const lines = result.stdout.split('\n').filter((l) => l.startsWith('{'));
  const ranks = lines.map((l) => JSON.parse(l)).sort((a, b) => a.rank - b.rank);
  return { status: result.status, ranks, output: `${result.stdout}\n${result.stderr}`, ms: Date.now() - started };
}

describe('launch detection', () => {
  it('recognises Open MPI, Hydra and PMIx launch variables', () => {
    expect(mpiLaunch({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4' })).toEqual({ rank: 2, size: 4 });
    expect(mpiLaunch({ PMI_RANK: '0', PMI_SIZE: '2' })).toEqual({ rank: 0, size: 2 });
    expect(launchedByMpirun({})).toBe(false);
  });
});

describe.skipIf(skipReason !== '')('collectives under mpirun', () => {
  it.each([2, 4])('every collective and subgroups agree on %i ranks, without blocking the event loop', (np) => {
    const { status, ranks, output } = runRanks(np, 'collectives.mjs');
    expect(status, output).toBe(0);
    expect(ranks).toHaveLength(np);
    const rankSum = (np * (np - 1)) / 2;
    for (const r of ranks) {
      expect(r.sum).toEqual([rankSum, 1.5 * np]);
      expect(r.avg).toEqual([np - 1]);
      expect(r.max).toEqual([7 * (np - 1), 0]);
      expect(r.min).toEqual([0, -(np - 1)]);
      expect(r.gathered).toEqual(Array.from({ length: np }, (_, src) => new Array(src + 1).fill(src)));
      expect(r.alltoallv).toEqual(Array.from({ length: np }, (_, src) => new Array(src + 1).fill(100 * src + r.rank)));
      expect(r.alltoall).toEqual(Array.from({ length: np }, (_, src) => 10 * src + r.rank));
      expect(r.broadcast).toEqual([4, 2]);
      expect(r.tp).toEqual({ rank: r.rank % 2, size: 2, sum: [2 * (r.rank - (r.rank % 2)) + 1] });
      if (r.rank % 2 === 1) expect(r.evens).toBeNull();
      else {
        const evens = [...Array(np).keys()].filter((x) => x % 2 === 0).reverse();
        expect(r.evens).toEqual({ rank: evens.indexOf(r.rank), size: evens.length, gathered: evens });
      }
      // A 5 ms timer kept firing while rank 1 held everyone up for 300 ms.
      expect(r.ticksWhileWaiting).toBeGreaterThan(20);
    }
  });

  it('gives the same data-parallel loss curve and expert-parallel outputs on 1, 2 and 4 ranks', () => {
    const runs = [1, 2, 4].map((np) => runRanks(np, 'parallel.mjs'));
    for (const run of runs) expect(run.status, run.output).toBe(0);
    const reference = runs[0]!.ranks[0];
    for (const run of runs) {
      for (const r of run.ranks) {
        expect(r.maxGradDiff).toBeLessThan(1e-5);
        expect(r.maxExpertDiff).toBe(0);
        for (const [i, loss] of (r.losses as number[]).entries()) expect(loss).toBeCloseTo(reference.losses[i], 6);
        expect(r.expertOutputs).toEqual(reference.expertOutputs);
      }
    }
    expect(reference.losses.at(-1)).toBeLessThan(reference.losses[0] / 5);
  });
});

describe.skipIf(skipReason !== '')('failures end every rank with a clear error', () => {
  it('names a collective mismatch on every rank', () => {
    const { status, output } = runRanks(2, 'failures.mjs', ['mismatch']);
    expect(status).not.toBe(0);
    expect(output).toMatch(/collective mismatch: ranks of this communicator called different collectives \(allreduce and barrier\)/);
    expect(output).not.toMatch(/no error/);
  });

  it('names different element counts', () => {
    const { status, output } = runRanks(2, 'failures.mjs', ['count']);
    expect(status).not.toBe(0);
    expect(output).toMatch(/ranks passed different element counts \(from 1 to 2\)/);
  });

  it('names ranks that split with different groups', () => {
    const { status, output } = runRanks(2, 'failures.mjs', ['subgroups']);
    expect(status).not.toBe(0);
    expect(output).toMatch(/subgroups: rank \d and rank\(s\) \d passed different groups/);
  });

  it('ends the job when a rank dies', () => {
    const { status, output, ms } = runRanks(2, 'failures.mjs', ['dead']);
    expect(status).not.toBe(0);
    expect(output).toMatch(/exited with non-zero status|exited on signal|did not complete within/);
    expect(ms).toBeLessThan(30_000);
  });

  it('ends the job at the deadline when a rank never joins', () => {
    const { status, output, ms } = runRanks(2, 'failures.mjs', ['hang'], { TEST_TIMEOUT_MS: '2000' });
    expect(status).not.toBe(0);
    expect(output).toMatch(/did not complete within 2000 ms: a rank has died or hung/);
    expect(ms).toBeLessThan(30_000);
  });
});
