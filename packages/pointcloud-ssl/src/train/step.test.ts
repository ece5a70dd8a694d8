import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { syntheticSplits } from './dataset.js';
import { createPretrainModel, disposePretrainBatch, preparePretrainBatch, pretrain, pretrainStep } from './pretrain.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const values = (store: Map<string, tf.Variable>) => [...store].map(([k, v]) => [k, Array.from(v.dataSync())]);

describe('pre-training in parts', () => {
  it.each(['distill', 'msc'] as const)('pretrain (%s) is createPretrainModel + preparePretrainBatch + pretrainStep, bit for bit', async (objective) => {
    const config = resolveConfig('tiny', { pretrain: { objective, steps: 3 } });
    const data = syntheticSplits(config);
    const whole = await pretrain(config, { data });
    const rng = createRng(config.seed);
    const model = createPretrainModel(config, rng);
    const losses: number[] = [];
    for (let step = 0; step < config.pretrain.steps; step++) {
      const batch = preparePretrainBatch(config, data.train, rng);
      losses.push(await pretrainStep(model, batch, step));
      disposePretrainBatch(batch);
    }
    expect(losses).toEqual(whole.history.map((h) => h.loss));
    expect(values(model.backbone.params)).toEqual(values(whole.backbone.params));
    if (objective === 'distill') expect(values(model.teacher!)).toEqual(values(whole.teacher!));
    else expect(model.teacher).toBeNull();
  });

  it('README: one prepared batch, several steps', async () => {
    const config = resolveConfig('tiny');
    const rng = createRng(config.seed);
    const data = syntheticSplits(config);
    const model = createPretrainModel(config, rng);
    const batch = preparePretrainBatch(config, data.train, rng);
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) losses.push(await pretrainStep(model, batch, step));
    disposePretrainBatch(batch);
    expect(batch.points).toBe(batch.view1.feat.shape[0]);
    expect(batch.mask).toHaveLength(batch.points);
    expect(losses.every(Number.isFinite)).toBe(true);
  });
});
