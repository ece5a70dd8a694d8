/**
 * Tiny training runs pinned to committed numbers (fixtures/golden-runs.json): the loss at
 * every step, the final evaluation, and the sum of squares of every saved weight tensor.
 * The resume tests compare a resumed run with an uninterrupted run of the same code, so a
 * bug in the optimizer, a loss or a data pipeline that both runs share passes them; it does
 * not pass this. A resumed run must land on the same numbers as well.
 *
 * The runs use the deterministic `cpu` backend, so the numbers depend only on the code. A
 * change to them must be deliberate (a new algorithm, a fixed bug): then regenerate with
 *   KILN_UPDATE_GOLDEN=1 npx vitest run src/golden-runs.e2e.test.ts   (in apps/trainer)
 * and explain the new numbers in the commit. The first losses are also checked against
 * what an untrained model must give, which does not depend on the fixture.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { kiln, metricRecords, tempDir } from './test-support.js';

const FIXTURE = new URL('./fixtures/golden-runs.json', import.meta.url);
const UPDATE = process.env.KILN_UPDATE_GOLDEN === '1';
/** Relative tolerance: the cpu backend is deterministic; this allows for libm differences. */
const RTOL = 1e-4;

interface GoldenRun {
  losses: number[];
  final: Record<string, number>;
  weights: Record<string, number>;
}

interface GoldenFile {
  regenerate: string;
  runs: Record<string, GoldenRun>;
}

const golden: GoldenFile = JSON.parse(readFileSync(FIXTURE, 'utf8'));

/** Per-step losses, the `final` metrics and Σw² of each weight tensor of a run's output. */
async function summarize(dir: string, checkpoint: string): Promise<GoldenRun> {
  const records = metricRecords(dir);
  const losses = records.filter((r) => typeof r.loss === 'number').map((r) => r.loss!);
  const finalRecord = records.find((r) => r.phase === 'final') ?? {};
  const final = Object.fromEntries(
    Object.entries(finalRecord).filter(([k, v]) => typeof v === 'number' && k !== 'step' && !/^(ms|time)$/.test(k)),
  ) as Record<string, number>;
  const { tensors } = await loadSafetensors(join(dir, checkpoint));
  const weights: Record<string, number> = {};
  for (const [name, entry] of Object.entries(tensors).sort(([a], [b]) => a.localeCompare(b))) {
    if (name.startsWith('optim/') || entry.dtype !== 'F32') continue;
    let s = 0;
    for (const v of entry.data as Float32Array) s += v * v;
    weights[name] = s;
  }
  return { losses, final, weights };
}

function expectGolden(name: string, got: GoldenRun): void {
  if (UPDATE) {
    golden.runs[name] = got;
    writeFileSync(FIXTURE, `${JSON.stringify(golden, null, 2)}\n`);
    return;
  }
  const want = golden.runs[name];
  expect(want, `no golden numbers for '${name}': run with KILN_UPDATE_GOLDEN=1`).toBeDefined();
  const close = (a: number, b: number) => Math.abs(a - b) <= RTOL * Math.max(1, Math.abs(b));
  expect(got.losses.length, `${name}: steps logged`).toBe(want!.losses.length);
  for (const [i, l] of got.losses.entries()) {
    expect(close(l, want!.losses[i]!), `${name}: loss at step ${i + 1} is ${l}, golden ${want!.losses[i]}`).toBe(true);
  }
  expect(Object.keys(got.final).sort(), `${name}: final metrics`).toEqual(Object.keys(want!.final).sort());
  for (const [k, v] of Object.entries(want!.final)) expect(close(got.final[k]!, v), `${name}: final ${k} is ${got.final[k]}, golden ${v}`).toBe(true);
  expect(Object.keys(got.weights), `${name}: weight tensors`).toEqual(Object.keys(want!.weights));
  for (const [k, v] of Object.entries(want!.weights)) expect(close(got.weights[k]!, v), `${name}: Σw² of ${k} is ${got.weights[k]}, golden ${v}`).toBe(true);
}

const MOE = ['moe', 'train', '--preset', 'tiny', '--quiet', '--checkpoint-every', '3'];

describe('golden tiny runs (cpu backend)', () => {
  it('kiln moe train: 6 steps, straight and resumed after 3, give the pinned losses and weights', async () => {
    const straight = join(tempDir(), 'moe');
    const r = await kiln([...MOE, '--steps', '6', '--out', straight]);
    expect(r.code, r.stderr).toBe(0);
    const run = await summarize(straight, 'model.safetensors');
    // The output bias starts at the corpus's unigram log-probabilities, so an untrained
    // byte-level model predicts byte frequencies (about 3 nats), well below uniform (ln 256).
    expect(run.losses[0]!).toBeGreaterThan(2);
    expect(run.losses[0]!).toBeLessThan(Math.log(256) - 1);
    expectGolden('moe-train-tiny-6', run);

    const resumed = join(tempDir(), 'moe');
    expect((await kiln([...MOE, '--steps', '3', '--out', resumed])).code).toBe(0);
    const second = await kiln([...MOE, '--steps', '6', '--out', resumed, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('resuming moe train from step 3');
    if (!UPDATE) expectGolden('moe-train-tiny-6', await summarize(resumed, 'model.safetensors'));
  }, 240_000);

  it('kiln pointcloud: 4 pre-training and 4 fine-tuning steps give the pinned losses, evaluation and weights', async () => {
    const out = join(tempDir(), 'pc');
    const r = await kiln(['pointcloud', '--preset', 'tiny', '--quiet', '--pretrain-steps', '4', '--finetune-steps', '4', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const run = await summarize(out, 'finetune.safetensors');
    expect(run.losses).toHaveLength(8);
    expectGolden('pointcloud-tiny-4-4', run);
  }, 240_000);
});
