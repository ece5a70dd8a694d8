import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, linearProbe } from '../eval/evaluate.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { PRESETS, resolveConfig } from './config.js';
import { syntheticSplits } from './dataset.js';
import { finetune } from './finetune.js';
import { momentumAt, pretrain } from './pretrain.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-pcssl-'));

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config', () => {
  it('names the invalid field', () => {
    expect(() => resolveConfig('tiny', { finetune: { mode: 'both' as never } })).toThrow(/config\.finetune\.mode = "both"/);
    expect(() => resolveConfig('tiny', { serialization: { poolStride: 3 } })).toThrow(/config\.serialization\.poolStride = 3/);
    expect(() => resolveConfig('tiny', { model: { inChannels: 9 } })).toThrow(/config\.model\.inChannels = 9: must be 6/);
    expect(() => resolveConfig('tiny', { pretrain: { batchScenes: 50 } })).toThrow(/pretrain\.batchScenes.*data\.trainScenes/);
    expect(() => resolveConfig('nope' as never)).toThrow(/unknown preset 'nope'/);
    // the data fields are checked against their field table (the one kiln's flags come from)
    expect(() => resolveConfig('tiny', { data: { maxPoints: -1 } })).toThrow(/config\.data\.maxPoints = -1: must be an integer ≥ 0/);
    expect(() => resolveConfig('tiny', { data: { type: 'kitti' as never } })).toThrow(/config\.data\.type = "kitti": must be one of 'synthetic', 'pointcept', 's3dis', 'scannet', 'ply'/);
    expect(() => resolveConfig('tiny', { data: { type: 's3dis' } })).toThrow(/config\.data\.root = "": must name the data folder of the 's3dis' data set/);
    expect(() => resolveConfig('tiny', { data: { trainSplit: 'Area_1' as never } })).toThrow(/config\.data\.trainSplit = "Area_1": must be a list of strings/);
    expect(() => resolveConfig('tiny', { data: { classes: ['a', 'b'] } })).toThrow(/config\.data\.classes = \["a","b"\]: must be \[\] or 13 names/);
    expect(resolveConfig('tiny', { seed: 3 }).seed).toBe(3);
    expect(PRESETS.default.pretrain.crossScene).toBe(true);
  });

  it('ramps the EMA momentum from start to end', () => {
    expect(momentumAt(0, 11, [0.99, 1])).toBeCloseTo(0.99);
    expect(momentumAt(5, 11, [0.99, 1])).toBeCloseTo(0.995);
    expect(momentumAt(10, 11, [0.99, 1])).toBeCloseTo(1);
  });
});

describe('training', () => {
  it('fine-tuning loss falls on a fixed pair of scenes', async () => {
    const cfg = resolveConfig('tiny', { data: { trainScenes: 2 }, finetune: { steps: 12, lr: 0.02, mode: 'single' } });
    const r = await finetune(cfg);
    const first = (r.history[0]!.loss + r.history[1]!.loss) / 2;
    const last = (r.history[10]!.loss + r.history[11]!.loss) / 2;
    expect(last).toBeLessThan(first * 0.8);
  });

  it('pre-trains with CSP and the MSC option, fine-tunes with SPD, evaluates, checkpoints', async () => {
    const cfg = resolveConfig('tiny');
    const data = syntheticSplits(cfg);
    const steps: number[] = [];
    const pre = await pretrain(cfg, { data, onStep: (i) => steps.push(i.loss) });
    expect(steps).toHaveLength(cfg.pretrain.steps);
    expect(steps.every(Number.isFinite)).toBe(true);
    // the EMA teacher moved with the student but is not the student
    const name = 'embed.proj.weight';
    const diff = tf.max(tf.abs(tf.sub(pre.teacher!.get(name)!, pre.backbone.params.get(name)!))).dataSync()[0]!;
    expect(diff).toBeGreaterThan(0);

    const msc = await pretrain(cfg, { data, overrides: { pretrain: { objective: 'msc', crossScene: false } } });
    expect(msc.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    expect(msc.teacher).toBeNull();

    const ft = await finetune(cfg, { data, pretrained: pre.backbone.params, overrides: { finetune: { mode: 'spd', spdLambda: 1 } } });
    // the student starts as the teacher, then drifts from it: alignment > 0 after the first step
    expect(ft.history[0]!.align).toBeLessThan(0.05);
    expect(ft.history.at(-1)!.align).toBeGreaterThan(0);
    const ev = await evaluate(ft.config, { backbone: ft.backbone, head: ft.head, data });
    expect(ev.single.mIoU).toBeGreaterThanOrEqual(0);
    expect(ev.single.mIoU).toBeLessThanOrEqual(1);
    expect(ev.gap).toBeCloseTo(ev.batch.mIoU - ev.single.mIoU);
    expect(ev.featureShift).toBeGreaterThan(0); // batch serialization changes the features
    const probe = await linearProbe(cfg, pre.backbone, data);
    expect(probe.metrics.OA).toBeGreaterThan(0);

    const path = join(dir, 'ft.safetensors');
    await saveCheckpoint(path, [ft.backbone.params, ft.head], ft.config, 'finetune');
    const ck = await loadCheckpoint(path);
    expect(ck.kind).toBe('finetune');
    expect(ck.config?.finetune.mode).toBe('spd');
    expect(ck.tensors.size).toBe(ft.backbone.params.size + ft.head.size);
    expect(Array.from(ck.tensors.get(name)!.dataSync())).toEqual(Array.from(ft.backbone.params.get(name)!.dataSync()));
    await expect(saveCheckpoint(path, [ft.head, ft.head], ft.config, 'x')).rejects.toThrow(/appears in two stores/);
  });
});
