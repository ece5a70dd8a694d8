/**
 * The pieces `--resume` relies on, in process: the checkpoint file's metadata, and the
 * optimizer and model state saved into it and restored from it. The end-to-end resume tests
 * spawn the built CLI; these check the harness itself, so its own bugs show here.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors, type SafetensorsEntry, tensorToEntry, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE, checkpointPath, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { modelTensors, optimizerTensors, restoreModel, restoreOptimizer } from './optimizer-state.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dir = () => mkdtempSync(join(tmpdir(), 'kiln-ckpt-'));

async function entries(tensors: Record<string, tf.Tensor>): Promise<Record<string, SafetensorsEntry>> {
  const out: Record<string, SafetensorsEntry> = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = await tensorToEntry(t);
  return out;
}

describe('checkpoint files', () => {
  it('live at <dir>/checkpoint.safetensors', () => {
    expect(CHECKPOINT_FILE).toBe('checkpoint.safetensors');
    expect(checkpointPath('/runs/a')).toBe('/runs/a/checkpoint.safetensors');
  });

  it('store job, step, config, rng and extra as kiln.* metadata and read them back', async () => {
    const d = dir();
    const state = {
      job: 'moe train',
      step: 12,
      config: { steps: 16, lr: 0.001, name: 'x' },
      rng: [1, 2, 3, 4] as [number, number, number, number],
      extra: { epoch: 3, order: [2, 0, 1] },
      tensors: { 'model/w': tf.tensor2d([[1, 2], [3, 4]]), 'optim/0000:iter': tf.scalar(5) },
    };
    expect(await saveCheckpoint(d, state)).toBe(join(d, 'checkpoint.safetensors'));
    const raw = await loadSafetensors(join(d, 'checkpoint.safetensors'));
    expect(raw.metadata).toEqual({
      'kiln.format': '1',
      'kiln.job': 'moe train',
      'kiln.step': '12',
      'kiln.config': '{"steps":16,"lr":0.001,"name":"x"}',
      'kiln.rng': '[1,2,3,4]',
      'kiln.extra': '{"epoch":3,"order":[2,0,1]}',
    });
    const back = await loadCheckpoint(d);
    expect(back).toBeDefined();
    expect({ ...back!, tensors: undefined }).toEqual({ job: 'moe train', step: 12, config: state.config, rng: [1, 2, 3, 4], extra: state.extra, tensors: undefined });
    expect(Object.keys(back!.tensors)).toEqual(['model/w', 'optim/0000:iter']);
    expect(Array.from(back!.tensors['model/w']!.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('write null for a missing extra, and read a file without kiln.extra as null', async () => {
    const d = dir();
    await saveCheckpoint(d, { job: 'j', step: 0, config: {}, rng: [1, 0, 0, 0], tensors: { w: tf.scalar(1) } });
    expect((await loadSafetensors(checkpointPath(d))).metadata['kiln.extra']).toBe('null');
    const meta = { 'kiln.job': 'j', 'kiln.step': '3', 'kiln.config': '{}', 'kiln.rng': '[1,0,0,0]' };
    await saveSafetensors(checkpointPath(d), { w: tf.scalar(1) }, meta);
    const back = await loadCheckpoint(d);
    expect(back!.extra).toBeNull();
    expect(back!.step).toBe(3);
  });

  it('are absent (undefined) when the folder has none', async () => {
    const d = dir();
    expect(await loadCheckpoint(d)).toBeUndefined();
    writeFileSync(join(d, 'model.safetensors'), 'other files do not count');
    expect(await loadCheckpoint(d)).toBeUndefined();
  });

  it('name the missing metadata key of a file kiln did not write', async () => {
    const full = { 'kiln.job': 'j', 'kiln.step': '3', 'kiln.config': '{}', 'kiln.rng': '[1,0,0,0]' };
    for (const key of Object.keys(full)) {
      const d = dir();
      const meta: Record<string, string> = { ...full };
      delete meta[key];
      await saveSafetensors(checkpointPath(d), { w: tf.scalar(1) }, meta);
      await expect(loadCheckpoint(d), key).rejects.toThrow(`checkpoint ${checkpointPath(d)} lacks metadata '${key}': not written by kiln`);
    }
  });

  it('refuse a step that is not a non-negative integer', async () => {
    for (const step of ['-1', '1.5', 'twelve']) {
      const d = dir();
      await saveSafetensors(checkpointPath(d), { w: tf.scalar(1) }, { 'kiln.job': 'j', 'kiln.step': step, 'kiln.config': '{}', 'kiln.rng': '[1,0,0,0]' });
      await expect(loadCheckpoint(d), step).rejects.toThrow(`checkpoint ${checkpointPath(d)}: metadata 'kiln.step' is ${JSON.stringify(step)}`);
    }
    const d = dir();
    await saveSafetensors(checkpointPath(d), { w: tf.scalar(1) }, { 'kiln.job': 'j', 'kiln.step': '0', 'kiln.config': '{}', 'kiln.rng': '[1,0,0,0]' });
    expect((await loadCheckpoint(d))!.step).toBe(0);
  });
});

let made = 0;
/** Variables of distinct shapes, so that a slot restored into the wrong variable is caught. */
function makeVariables(prefix: string): Record<string, tf.Variable> {
  made++;
  const out: Record<string, tf.Variable> = {};
  for (let i = 0; i < 6; i++) out[`w${i}`] = tf.variable(tf.fill([i + 1, 2], 0.1 * (i + 1)), true, `${prefix}${made}-w${i}`);
  return out;
}

function step(opt: tf.Optimizer, vars: Record<string, tf.Variable>, k: number): void {
  opt.minimize(() => {
    let s = tf.scalar(0);
    for (const [i, v] of Object.values(vars).entries()) s = tf.add(s, tf.sum(tf.mul(tf.square(tf.sub(v, k + i)), i + 1)));
    return s as tf.Scalar;
  });
}

describe('optimizer and model state', () => {
  it('saves every Adam slot in order, with the running beta products, and restores a run that continues exactly', async () => {
    const vars = makeVariables('a');
    const opt = tf.train.adam(0.05, 0.8, 0.95);
    for (let k = 0; k < 3; k++) step(opt, vars, k);
    const saved = await optimizerTensors(opt);
    const names = Object.keys(saved);
    // iterations + 2 moments × 6 variables: 13 slots, indices zero-padded so they sort in order
    expect(names.filter((n) => n.startsWith('optim/'))).toHaveLength(13);
    expect(names[0]).toBe('optim/0000:iter');
    expect(names[12]).toMatch(/^optim\/0012:a\d+-w5\/v$/);
    expect(names.filter((n) => n.startsWith('optim-acc/')).sort()).toEqual(['optim-acc/accBeta1', 'optim-acc/accBeta2']);
    // tfjs keeps β^(t+1) after t steps
    expect(saved['optim-acc/accBeta1']!.dataSync()[0]).toBeCloseTo(0.8 ** 4, 6);
    expect(saved['optim-acc/accBeta2']!.dataSync()[0]).toBeCloseTo(0.95 ** 4, 6);
    const model = modelTensors(vars);
    expect(Object.keys(model)).toEqual(['model/w0', 'model/w1', 'model/w2', 'model/w3', 'model/w4', 'model/w5']);
    const file = await entries({ ...model, ...saved });

    // A fresh model and optimizer, restored from the file, take the same next steps.
    const vars2 = makeVariables('a');
    const opt2 = tf.train.adam(0.05, 0.8, 0.95);
    restoreModel(vars2, file);
    await restoreOptimizer(opt2, file);
    for (let k = 3; k < 5; k++) {
      step(opt, vars, k);
      step(opt2, vars2, k);
    }
    for (const name of Object.keys(vars)) expect(Array.from(vars2[name]!.dataSync()), name).toEqual(Array.from(vars[name]!.dataSync()));
  });

  it('restores the running beta products from the file, not from pow()', async () => {
    const vars = makeVariables('b');
    const opt = tf.train.adam(0.05, 0.8, 0.95);
    step(opt, vars, 0);
    const file = await entries({ ...(await optimizerTensors(opt)) });
    file['optim-acc/accBeta1'] = { dtype: 'F32', shape: [], data: Float32Array.of(0.123) };
    const opt2 = tf.train.adam(0.05, 0.8, 0.95);
    await restoreOptimizer(opt2, file);
    expect((opt2 as unknown as { accBeta1: tf.Variable }).accBeta1.dataSync()[0]).toBeCloseTo(0.123, 6);
    // Without the entry, setWeights' own value (β^(t+1) by pow) stays.
    delete file['optim-acc/accBeta2'];
    const opt3 = tf.train.adam(0.05, 0.8, 0.95);
    await restoreOptimizer(opt3, file);
    expect((opt3 as unknown as { accBeta2: tf.Variable }).accBeta2.dataSync()[0]).toBeCloseTo(0.95 ** 2, 6);
  });

  it('refuses a checkpoint without optimizer state', async () => {
    await expect(restoreOptimizer(tf.train.adam(0.1), { 'model/w': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } })).rejects.toThrow(
      'checkpoint has no optimizer state (no optim/* tensors)',
    );
  });

  it('restores model variables by name and refuses missing tensors or other shapes', () => {
    const vars = { a: tf.variable(tf.zeros([2, 3])), b: tf.variable(tf.zeros([4])) };
    const file: Record<string, SafetensorsEntry> = {
      'model/a': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      'model/b': { dtype: 'F32', shape: [4], data: Float32Array.from([7, 8, 9, 10]) },
      'model/unused': { dtype: 'F32', shape: [1], data: Float32Array.of(0) },
    };
    restoreModel(vars, file);
    expect(Array.from(vars.a.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(vars.b.dataSync())).toEqual([7, 8, 9, 10]);
    const { 'model/b': _b, ...withoutB } = file;
    expect(() => restoreModel(vars, withoutB)).toThrow("checkpoint lacks tensor 'model/b'");
    const wrong = { ...file, 'model/a': { dtype: 'F32' as const, shape: [3, 2], data: new Float32Array(6) } };
    expect(() => restoreModel(vars, wrong)).toThrow("checkpoint tensor 'model/a' has shape [3,2], the model expects [2,3]");
  });
});
