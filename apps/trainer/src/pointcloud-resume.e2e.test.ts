/**
 * `kiln pointcloud` checkpoints mid-phase and resumes exactly: runs killed with SIGKILL
 * during pre-training and during fine-tuning, and stopped with Ctrl-C (SIGINT), end with
 * the weights, evaluation and metric lines of an uninterrupted run, bit for bit.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors } from '@kiln/tensor';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type KilnResult, kiln, metricRecords, spawnKiln, startFakeEvalServer, tempDir, waitFor } from './test-support.js';

// Eight steps per phase and a checkpoint every two: kills land between checkpoints.
const TINY = ['--preset', 'tiny', '--quiet'];
const PRETRAIN = ['--pretrain-steps', '8'];
const FINETUNE = ['--finetune-steps', '8'];
const ALL = ['pointcloud', ...TINY, ...PRETRAIN, ...FINETUNE, '--checkpoint-every', '2'];

/** Waits for `predicate` while the run is alive; fails with its output when it ends first. */
async function whileRunning(run: ReturnType<typeof spawnKiln>, predicate: () => boolean, what: string): Promise<void> {
  let ended: KilnResult | undefined;
  run.done.then((r) => {
    ended = r;
  });
  await waitFor(() => {
    if (ended) throw new Error(`kiln ended (code ${ended.code}) before ${what}: ${ended.stderr}`);
    return predicate();
  }, 90_000, what);
}

/** Every tensor of a safetensors file as bytes, by name. */
async function tensorBytes(path: string): Promise<Record<string, string>> {
  const { tensors } = await loadSafetensors(path);
  return Object.fromEntries(Object.entries(tensors).map(([k, e]) => [k, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('base64')]));
}

/** metrics.jsonl without the wall-clock fields. */
function metricLines(dir: string): unknown[] {
  return metricRecords(dir).map(({ time: _t, ms: _ms, ...rest }) => rest);
}

/** Steps logged so far in `phase` (0 before the file exists). */
function stepsLogged(dir: string, phase: string): number {
  const file = join(dir, 'metrics.jsonl');
  if (!existsSync(file)) return 0;
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines.filter((l) => l.includes(`"phase":"${phase}"`)).length;
}

const stateStep = async (path: string) => Number((await loadSafetensors(path)).metadata?.step);

let straight = '';

beforeAll(async () => {
  straight = join(tempDir(), 'straight');
  const r = await kiln([...ALL, '--out', straight]);
  expect(r.code, r.stderr).toBe(0);
  // A finished phase leaves its weights and no state file.
  expect(existsSync(join(straight, 'pretrain-state.safetensors'))).toBe(false);
  expect(existsSync(join(straight, 'finetune-state.safetensors'))).toBe(false);
}, 120_000);

async function expectSameAsStraight(dir: string): Promise<void> {
  for (const file of ['pretrain.safetensors', 'finetune.safetensors']) {
    expect(await tensorBytes(join(dir, file)), file).toEqual(await tensorBytes(join(straight, file)));
  }
  expect(readFileSync(join(dir, 'eval.json'), 'utf8')).toBe(readFileSync(join(straight, 'eval.json'), 'utf8'));
  // each step once, with the losses of the uninterrupted run, then the final line
  expect(metricLines(dir)).toEqual(metricLines(straight));
}

describe('kiln pointcloud --resume after SIGKILL', () => {
  it("continues mid-pretrain, then (killed again) mid-finetune, to the uninterrupted run's weights, mIoU and metric lines", async () => {
    const dir = join(tempDir(), 'killed');
    // First kill mid-pre-training; the resumed run is killed again mid-fine-tuning.
    let args = [...ALL, '--out', dir];
    for (const phase of ['pretrain', 'finetune'] as const) {
      const run = spawnKiln(args);
      const state = join(dir, `${phase}-state.safetensors`);
      await whileRunning(run, () => existsSync(state), `the first ${phase} checkpoint`);
      run.child.kill('SIGKILL');
      const killed = await run.done;
      expect(killed.signal).toBe('SIGKILL');
      // killed inside the phase: its weights file is not there, its state is mid-way
      expect(existsSync(join(dir, `${phase}.safetensors`))).toBe(false);
      const at = await stateStep(state);
      expect(at).toBeGreaterThanOrEqual(2);
      expect(at).toBeLessThan(8);
      if (phase === 'finetune') expect(killed.stdout).toMatch(/resuming: pretrain from step \d\/8/);
      args = [...ALL, '--out', dir, '--resume'];
      if (phase === 'finetune') {
        const resumed = await kiln(args);
        expect(resumed.code, resumed.stderr).toBe(0);
        expect(resumed.stdout).toContain('resuming: pre-training already done');
        expect(resumed.stdout).toContain(`resuming: finetune from step ${at}/8`);
        expect(existsSync(state)).toBe(false);
      }
    }
    await expectSameAsStraight(dir);
  }, 150_000);
});

describe('kiln pointcloud: Ctrl-C', () => {
  it('pretrain: SIGINT checkpoints at the next step, exits 130; --resume finishes identically on the same server run; a changed config is refused', async () => {
    const dir = join(tempDir(), 'int-pretrain');
    const fake = await startFakeEvalServer();
    onTestFinished(() => fake.close());
    const args = ['pointcloud', 'pretrain', ...TINY, ...PRETRAIN, '--checkpoint-every', '100', '--server', fake.url, '--token', 't'];
    const run = spawnKiln([...args, '--out', dir]);
    await whileRunning(run, () => stepsLogged(dir, 'pretrain') >= 2, 'two pre-training steps');
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('SIGINT: stopping at the next step boundary');
    const state = join(dir, 'pretrain-state.safetensors');
    const at = await stateStep(state);
    expect(r.stdout).toContain(`interrupted pretrain step ${at}/8; checkpoint ${state}; continue with --resume`);
    expect(at).toBeGreaterThanOrEqual(2);
    expect(at).toBeLessThan(8);
    // no checkpoint is due before step 100: this one was written for the Ctrl-C
    expect(stepsLogged(dir, 'pretrain')).toBe(at);

    const changed = await kiln([...args, '--out', dir, '--resume', '--pretrain-lr', '0.5']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('config.pretrain.lr');

    const resumed = await kiln([...args, '--out', dir, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await tensorBytes(join(dir, 'pretrain.safetensors'))).toEqual(await tensorBytes(join(straight, 'pretrain.safetensors')));
    expect(metricLines(dir)).toEqual(metricLines(straight).filter((r) => (r as { phase: string }).phase === 'pretrain'));
    // the resumed process appends to the server run the first one created
    expect(fake.requests.filter((q) => q.method === 'POST' && q.url === '/api/runs')).toHaveLength(1);
    const sent = fake.requests.filter((q) => q.url === '/api/runs/run-1/metrics').flatMap((q) => q.body.points as { step: number; name: string }[]);
    expect(sent.filter((p) => p.name === 'pretrain/loss').map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  }, 120_000);

  it('finetune: SIGINT checkpoints and exits 130; --resume finishes with the same weights and mIoU', async () => {
    const dir = join(tempDir(), 'int-finetune');
    const args = ['pointcloud', 'finetune', ...TINY, ...FINETUNE, '--checkpoint-every', '100', '--pretrained', join(straight, 'pretrain.safetensors')];
    const run = spawnKiln([...args, '--out', dir]);
    await whileRunning(run, () => stepsLogged(dir, 'finetune') >= 3, 'three fine-tuning steps');
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    const at = await stateStep(join(dir, 'finetune-state.safetensors'));
    expect(at).toBeGreaterThanOrEqual(3);
    expect(at).toBeLessThan(8);
    expect(existsSync(join(dir, 'eval.json'))).toBe(false);

    const resumed = await kiln([...args, '--out', dir, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resuming: finetune from step ${at}/8`);
    expect(await tensorBytes(join(dir, 'finetune.safetensors'))).toEqual(await tensorBytes(join(straight, 'finetune.safetensors')));
    expect(JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')).mIoU).toBe(JSON.parse(readFileSync(join(straight, 'eval.json'), 'utf8')).mIoU);
    expect(metricLines(dir).filter((l) => (l as { phase: string }).phase === 'finetune')).toEqual(
      metricLines(straight).filter((l) => (l as { phase: string }).phase === 'finetune'),
    );
  }, 120_000);
});
