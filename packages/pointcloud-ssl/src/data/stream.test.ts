// Streaming training data: deterministic per (seed, step, micro-batch), the same through the
// worker thread as inline, read on demand, sharded per micro-batch, errors naming the file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type SceneRef, openDataset } from './datasets.js';
import { trainingPipeline } from './pipeline.js';
import type { PointCloudBatch } from './point-cloud.js';
import { type StreamPlan, SceneStream, makeMicroBatch, mixSeed, shardScenes } from './stream.js';
import { generateSyntheticScenes } from './synthetic.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const plain = (b: PointCloudBatch) => ({ coord: Array.from(b.coord), color: Array.from(b.color ?? []), label: Array.from(b.label ?? []), offset: Array.from(b.offset) });

async function s3disPlan(overrides: Partial<StreamPlan> = {}): Promise<StreamPlan> {
  const ds = await openDataset({ type: 's3dis', root: join(FIXTURES, 'pointcept-s3dis'), trainSplit: ['Area_1', 'Area_2', 'Area_5'] });
  return { scenes: ds.train, pipeline: trainingPipeline({ gridSize: 0.1, maxPoints: 40 }), views: 2, batchScenes: 2, microBatches: 1, seed: 7, ...overrides };
}

describe('streaming training data', () => {
  it('mixSeed and shards', () => {
    expect(mixSeed(1, 2, 3)).toBe(mixSeed(1, 2, 3));
    expect(new Set([mixSeed(0, 0, 1), mixSeed(0, 1, 0), mixSeed(1, 0, 0), mixSeed(0, 0, 0)]).size).toBe(4);
    expect(shardScenes(7, 3, 1)).toEqual([1, 4]);
  });

  it('a micro-batch is the same inline and through the worker, views share their points, crops apply', async () => {
    const plan = await s3disPlan();
    const inline = new SceneStream(plan, { workers: 0, micros: [0], endStep: 3 });
    const threaded = new SceneStream(plan, { workers: 1, prefetch: 2, micros: [0], endStep: 3 });
    try {
      for (let step = 0; step < 3; step++) {
        const a = await inline.get(step, 0);
        const b = await threaded.get(step, 0);
        expect(b.map(plain)).toEqual(a.map(plain));
        expect(a).toHaveLength(2);
        expect(Array.from(a[0]!.offset)).toEqual(Array.from(a[1]!.offset));
        expect(Array.from(a[0]!.label!)).toEqual(Array.from(a[1]!.label!));
        expect(plain(a[0]!).coord).not.toEqual(plain(a[1]!).coord); // different augmentations
        const sizes = [a[0]!.offset[0]!, a[0]!.offset[1]! - a[0]!.offset[0]!];
        for (const size of sizes) expect(size).toBeLessThanOrEqual(40); // SphereCrop(point_max=40) of 60-point rooms
        expect(a[0]!.color!.every((c) => c >= 0 && c <= 1)).toBe(true);
        if (step < 2) expect(threaded.inFlight).toBeGreaterThan(0); // the next steps are being read already
      }
      const again = await makeMicroBatch(plan, 1, 0, async (i) => (await import('./datasets.js')).loadScene(plan.scenes[i]!), plan.scenes.length);
      expect(again.map(plain)).toEqual((await inline.get(1, 0)).map(plain));
    } finally {
      await inline.close();
      await threaded.close();
    }
  });

  it('reads scenes on demand (nothing cached), each micro-batch from its own shard', async () => {
    const scenes = generateSyntheticScenes({ seed: 3, scenes: 6, points: 50 }).map(({ coord, color, label, offset }) => ({ coord, color, label, offset }));
    const plan: StreamPlan = { scenes: [], pipeline: trainingPipeline({ gridSize: 0.05, maxPoints: 0 }), views: 1, batchScenes: 2, microBatches: 3, seed: 1 };
    const loads: number[] = [];
    for (let step = 0; step < 4; step++) {
      for (let micro = 0; micro < 3; micro++) {
        const before = loads.length;
        await makeMicroBatch(
          plan,
          step,
          micro,
          async (i) => {
            loads.push(i);
            return scenes[i]!;
          },
          6,
        );
        const got = loads.slice(before);
        expect(got).toHaveLength(2);
        expect(got.every((i) => i % 3 === micro)).toBe(true);
      }
    }
    expect(() => new SceneStream({ ...plan, batchScenes: 3 }, { memory: scenes, micros: [0], endStep: 1 })).toThrow(/6 training scene\(s\) give each of the 3 micro-batch\(es\) of a step a shard of 2 .*fewer than the 3 scenes/);
  });

  it('an unreadable scene fails the step with the file named, through the worker too', async () => {
    const plan = await s3disPlan({ batchScenes: 4 });
    const broken: SceneRef[] = plan.scenes.map((s) => ({ ...s, path: join((s as { path: string }).path, 'gone') }) as SceneRef);
    for (const workers of [0, 1]) {
      const stream = new SceneStream({ ...plan, scenes: broken }, { workers, micros: [0], endStep: 1 });
      try {
        await expect(stream.get(0, 0)).rejects.toThrow(/gone: scene folder not found/);
      } finally {
        await stream.close();
      }
    }
  });
});
