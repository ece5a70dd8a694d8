/**
 * Pre-training and fine-tuning on a GPU backend (the `test:webgpu` pass, KILN_TEST_BACKEND=
 * webgpu): the device→host reads of a run are the logged scalars of each step, awaited,
 * and nothing is read synchronously.
 */
import { countReads, describeReads, initTestBackend, testBackendName, tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finetune } from './finetune.js';
import { pretrain } from './pretrain.js';

const backend = testBackendName();

describe.skipIf(backend === 'cpu')(`training steps on ${backend}`, () => {
  beforeAll(async () => {
    await initTestBackend();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('a pre-training step reads only its loss; a fine-tuning step its loss and two logged parts', async () => {
    const steps = 2;
    const pre = await countReads(() => pretrain('tiny', { overrides: { pretrain: { steps } } }));
    expect(pre.count.sync, describeReads(pre.count)).toBe(0);
    expect(pre.count.async, describeReads(pre.count)).toBe(steps);
    expect(pre.result.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    const ft = await countReads(() => finetune('tiny', { pretrained: pre.result.backbone.params, overrides: { finetune: { steps } } }));
    expect(ft.count.sync, describeReads(ft.count)).toBe(0);
    expect(ft.count.async, describeReads(ft.count)).toBeLessThanOrEqual(3 * steps);
    expect(ft.count.async).toBeGreaterThanOrEqual(steps);
  });
});
