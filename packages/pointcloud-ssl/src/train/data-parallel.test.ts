// Gradient accumulation and data parallelism are one mechanism: R ranks with A micro-batches
// each take the step one process takes with R·A micro-batches. Ranks here are concurrent loops
// in this thread joined by an in-memory all-reduce (the MPI runs are the trainer's e2e test).
import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ParamStore } from '../model/params.js';
import { resolveConfig } from './config.js';
import type { DataParallelGroup } from './data-parallel.js';
import { syntheticSplits } from './dataset.js';
import { finetune } from './finetune.js';
import { pretrain } from './pretrain.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** `size` group members whose allReduce('sum') resolves once every member has called it. */
function inMemoryGroup(size: number): DataParallelGroup[] {
  let round: { parts: Float32Array[]; resolvers: ((v: Float32Array) => void)[] } = { parts: [], resolvers: [] };
  return Array.from({ length: size }, (_, rank) => ({
    rank,
    size,
    allReduce: (data: Float32Array) =>
      new Promise<Float32Array>((resolve) => {
        round.parts[rank] = data.slice();
        round.resolvers.push(resolve);
        if (round.resolvers.length === size) {
          const sum = new Float32Array(data.length);
          for (const p of round.parts) for (let i = 0; i < sum.length; i++) sum[i]! += p[i]!;
          const done = round.resolvers;
          round = { parts: [], resolvers: [] };
          for (const r of done) r(sum.slice());
        }
      }),
  }));
}

const values = (store: ParamStore) => [...store.values()].flatMap((v) => Array.from(v.dataSync()));

function expectClose(a: number[], b: number[], tol: number): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  expect(worst).toBeLessThan(tol);
}

describe('data parallel = accumulation', () => {
  const cfg = resolveConfig('tiny', { data: { trainScenes: 4, pointsPerScene: 48 }, pretrain: { steps: 3, batchScenes: 1 }, finetune: { steps: 3, batchScenes: 1, mode: 'spd', teacher: 'ema' } });
  const data = syntheticSplits(cfg);

  it('fine-tuning: 2 ranks × 1 micro-batch = 1 process × 2, and differs from 1 micro-batch', async () => {
    const one = await finetune(cfg, { data, overrides: { finetune: { accumulation: 2 } } });
    const ranks = await Promise.all(inMemoryGroup(2).map((g) => finetune(cfg, { data, dataParallel: g })));
    for (const r of ranks) {
      expectClose(r.history.map((h) => h.loss), one.history.map((h) => h.loss), 1e-5);
      expect(r.history.map((h) => h.points)).toEqual(one.history.map((h) => h.points));
      expectClose(values(r.backbone.params), values(one.backbone.params), 1e-5);
    }
    const single = await finetune(cfg, { data });
    expect(Math.abs(single.history[2]!.loss - one.history[2]!.loss)).toBeGreaterThan(1e-4);
  });

  it('pre-training: 2 ranks × 2 micro-batches = 1 process × 4', async () => {
    const one = await pretrain(cfg, { data, overrides: { pretrain: { accumulation: 4 } } });
    const ranks = await Promise.all(inMemoryGroup(2).map((g) => pretrain(cfg, { data, dataParallel: g, overrides: { pretrain: { accumulation: 2 } } })));
    for (const r of ranks) {
      expectClose(r.history.map((h) => h.loss), one.history.map((h) => h.loss), 1e-5);
      expectClose(values(r.backbone.params), values(one.backbone.params), 1e-5);
      expectClose(values(r.teacher!), values(one.teacher!), 1e-5);
    }
    // four micro-batches of one scene each, every step: 4 distinct shards of the 4 scenes
    await expect(pretrain(cfg, { data, overrides: { pretrain: { accumulation: 4, batchScenes: 2 } } })).rejects.toThrow(/4 training scene\(s\) give each of the 4 micro-batch\(es\) of a step a shard of 1 .*fewer than the 2 scenes/);
  });
});
