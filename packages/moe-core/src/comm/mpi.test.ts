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
import { tf } from '@kiln/tensor';
import { MOE_LM_PRESETS, type MoeLmTrainConfig, trainMoeLm } from '../demo/train.js';
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
  }, 480_000);

  const assemble = (ranks: { output: number[]; dHidden: number[]; router: number[] }[]) => ({
    output: ranks.flatMap((r) => r.output),
    dHidden: ranks.flatMap((r) => r.dHidden),
    router: ranks[0]!.router,
  });
  const runLayer = (np: number, args: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-ep-'));
    mpirun(np, 'ep-layer.mjs', [args[0]!, dir, ...args.slice(1)]);
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(np);
    return assemble(files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8'))).sort((a, b) => a.rank - b.rank));
  };
  const expectSame = (one: ReturnType<typeof assemble>, other: ReturnType<typeof assemble>) => {
    for (const key of ['output', 'dHidden', 'router'] as const) {
      expect(other[key]).toHaveLength(one[key].length);
      for (const [i, v] of other[key].entries()) expect(Math.abs(v - one[key][i]!)).toBeLessThan(1e-4);
    }
  };

  it('expert tensor parallel (etp 2 × ep 2, MPI sub-communicators) gives the outputs and gradients of one rank', () => {
    expectSame(runLayer(1, ['alltoall', '4', '1']), runLayer(4, ['alltoall', '4', '2']));
  }, 240_000);

  it.each(['alltoall', 'allgather'])('expert parallel (%s dispatcher) on 1, 2 and 4 ranks gives the same outputs and gradients', (dispatcher) => {
    // One local expert per rank at 4 ranks: the edge where a rank's grouped GEMM has one group.
    const [one, two, four] = [1, 2, 4].map((np) => runLayer(np, [dispatcher, '4']));
    for (const other of [two!, four!]) expectSame(one!, other);
  }, 240_000);

  it('context parallel (cp 4 × ep 2; cp 2 × dp 2, on MPI sub-communicators) follows the single-process loss curve to the same weights', async () => {
    await tf.setBackend('cpu');
    const tiny = MOE_LM_PRESETS.tiny;
    const base: Partial<MoeLmTrainConfig> = { ...tiny, layers: 2, context: 16, batch: 4, steps: 3, evalEvery: 0, moe: { ...tiny.moe, sharedExpertSize: 16, zLossCoeff: 1e-3 } };
    // with dp 2 every replica has its own aux loss (Megatron's per-micro-batch loss): off there
    const noAux: Partial<MoeLmTrainConfig> = { ...base, moe: { ...base.moe!, auxLossCoeff: 0 } };
    const layouts = [
      { single: base, parallel: { contextParallel: 4, expertParallel: 2 } },
      { single: noAux, parallel: { contextParallel: 2 } },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'kiln-cp-'));
    mpirun(4, 'cp-train.mjs', [dir, JSON.stringify(layouts.map((l) => ({ ...l.single, ...l.parallel })))]);
    const ranks = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    expect(ranks).toHaveLength(4);
    for (const [i, layout] of layouts.entries()) {
      const reference = await trainMoeLm(layout.single);
      const losses = reference.reports.map((r) => r.loss);
      const aux = reference.reports.map((r) => r.routerLosses[0]!.aux_loss ?? 0);
      const weights = reference.model.namedTensors();
      for (const r of ranks) {
        const run = r.runs[i];
        const what = `${JSON.stringify(layout.parallel)} rank ${r.rank}`;
        for (const [j, l] of (run.losses as number[]).entries()) expect(Math.abs(l - losses[j]!), `${what} loss ${j}`).toBeLessThan(1e-5);
        for (const [j, a] of (run.auxLoss as number[]).entries()) expect(Math.abs(a - aux[j]!), `${what} aux ${j}`).toBeLessThan(1e-6);
        for (const [name, v] of Object.entries(weights)) {
          const want = v.dataSync();
          const got = run.weights[name] as number[];
          expect(got).toHaveLength(want.length);
          let worst = 0;
          for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
          expect(worst, `${what} ${name}`).toBeLessThan(5e-5);
        }
      }
    }
  }, 480_000);
});
