/**
 * Data- and expert-parallel training over MPI: `mpirun -np 1, 2, 4` on the programs in
 * test/mpi (which import the built package and @kiln/mpi), checking that every rank count
 * computes the same thing. Skipped, with the reason printed, where mpirun or the MPI addon
 * is missing; CI installs Open MPI, so they run there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launchedByMpi, processCommunicator } from './process-communicator.js';

const root = join(import.meta.dirname, '..', '..');

function mpiSkipReason(): string {
  if (spawnSync('mpirun', ['--version']).status !== 0) return 'mpirun not found (install openmpi-bin)';
  try {
    const mpiRoot = dirname(createRequire(join(root, 'package.json')).resolve('@kiln/mpi/package.json'));
    if (!existsSync(join(mpiRoot, 'build', 'Release', 'kiln_mpi.node'))) return '@kiln/mpi was built without Open MPI';
  } catch {
    return '@kiln/mpi is not installed';
  }
  return '';
}
const skipReason = mpiSkipReason();
if (skipReason) console.log(`[skip] MPI training tests skipped: ${skipReason}`);

function mpirun(np: number, program: string, args: string[] = []) {
  const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), process.execPath, join(root, 'test', 'mpi', program), ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  return run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .sort((a, b) => a.rank - b.rank);
}

describe('process communicator', () => {
  it('is a group of one outside an MPI launcher', async () => {
    expect(launchedByMpi({})).toBe(false);
    expect(launchedByMpi({ OMPI_COMM_WORLD_RANK: '0' })).toBe(true);
    const comm = await processCommunicator({});
    expect([comm.rank, comm.size]).toEqual([0, 1]);
  });
});

describe.skipIf(skipReason !== '')('training over MPI', () => {
  it('data parallel on 1, 2 and 4 ranks follows the same loss curve', () => {
    const runs = [1, 2, 4].map((np) => mpirun(np, 'dp-train.mjs'));
    const reference = runs[0]![0].losses as number[];
    expect(reference).toHaveLength(6);
    for (const ranks of runs) {
      for (const r of ranks) {
        expect(r.losses).toHaveLength(reference.length);
        for (const [i, loss] of (r.losses as number[]).entries()) expect(Math.abs(loss - reference[i]!)).toBeLessThan(2e-4 * Math.max(1, Math.abs(reference[i]!)));
      }
    }
    // the output bias starts at the byte frequencies, so six steps start near the unigram loss (≈ 3 nats) rather than ln 256
    expect(reference.every((l) => Number.isFinite(l) && l < 0.7 * Math.log(256))).toBe(true);
  });

  it.each(['alltoall', 'allgather'])('expert parallel (%s dispatcher) on 1, 2 and 4 ranks gives the same outputs and gradients', (dispatcher) => {
    const assemble = (ranks: { output: number[]; dHidden: number[]; router: number[] }[]) => ({
      output: ranks.flatMap((r) => r.output),
      dHidden: ranks.flatMap((r) => r.dHidden),
      router: ranks[0]!.router,
    });
    // One local expert per rank at 4 ranks: the edge where a rank's grouped GEMM has one group.
    const run = (np: number) => {
      const dir = mkdtempSync(join(tmpdir(), 'kiln-ep-'));
      mpirun(np, 'ep-layer.mjs', [dispatcher, dir, '4']);
      const files = readdirSync(dir).sort();
      expect(files).toHaveLength(np);
      return assemble(files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8'))).sort((a, b) => a.rank - b.rank));
    };
    const [one, two, four] = [1, 2, 4].map(run);
    for (const other of [two!, four!]) {
      for (const key of ['output', 'dHidden', 'router'] as const) {
        expect(other[key]).toHaveLength(one![key].length);
        for (const [i, v] of other[key].entries()) expect(Math.abs(v - one![key][i]!)).toBeLessThan(1e-4);
      }
    }
  });
});
