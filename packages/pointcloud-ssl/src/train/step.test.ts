import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { syntheticSplits } from './dataset.js';
import { createPretrainModel, disposePretrainBatch, nextPretrainBatches, pretrain, pretrainStep, pretrainStream } from './pretrain.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const values = (store: Map<string, tf.Variable>) => [...store].map(([k, v]) => [k, Array.from(v.dataSync())]);

describe('pre-training in parts', () => {
  it.each([
    ['distill', 1],
    ['msc', 1],
    ['distill', 2],
  ] as const)('pretrain (%s, accumulation %i) is createPretrainModel + nextPretrainBatches + pretrainStep, bit for bit', async (objective, accumulation) => {
    const config = resolveConfig('tiny', { pretrain: { objective, steps: 3, accumulation } });
    const data = syntheticSplits(config);
    const whole = await pretrain(config, { data });
    const model = createPretrainModel(config, createRng(config.seed));
    const stream = pretrainStream(config, { scenes: data.train });
    const losses: number[] = [];
    for (let step = 0; step < config.pretrain.steps; step++) {
      const batches = await nextPretrainBatches(config, stream, step);
      expect(batches).toHaveLength(accumulation);
      losses.push(await pretrainStep(model, batches, step));
      batches.forEach(disposePretrainBatch);
    }
    await stream.close();
    expect(losses).toEqual(whole.history.map((h) => h.loss));
    expect(values(model.backbone.params)).toEqual(values(whole.backbone.params));
    if (objective === 'distill') expect(values(model.teacher!)).toEqual(values(whole.teacher!));
    else expect(model.teacher).toBeNull();
  });

  it('README: one prepared batch, several steps', async () => {
    const config = resolveConfig('tiny');
    const model = createPretrainModel(config, createRng(config.seed));
    const stream = pretrainStream(config, { scenes: syntheticSplits(config).train });
    const [batch] = await nextPretrainBatches(config, stream, 0);
    await stream.close();
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) losses.push(await pretrainStep(model, batch!, step));
    disposePretrainBatch(batch!);
    expect(batch!.points).toBe(batch!.view1.feat.shape[0]);
    expect(batch!.mask).toHaveLength(batch!.points);
    expect(losses.every(Number.isFinite)).toBe(true);
  });
});
