import { tf } from '@kiln/tensor';
import { expect, it } from 'vitest';
import { getMoEMetricsTracker } from '../losses/metrics.js';
import { TopKRouter } from './router.js';
import { validateMoEConfig } from '../config.js';

it('README router example runs', () => {
  const config = validateMoEConfig({ numExperts: 8, topk: 2, hiddenSize: 64, auxLossCoeff: 1e-2, zLossCoeff: 1e-3 });
  const router = new TopKRouter(config, { seed: 1, layerNumber: 1 });
  const x = tf.randomNormal([32, 64]) as tf.Tensor2D;
  const { grads } = tf.variableGrads(() => tf.sum(router.forward(x).probs) as tf.Scalar);
  expect(grads[router.weight.name]!.shape).toEqual([8, 64]);
  const r = getMoEMetricsTracker().report();
  expect(Object.keys(r).sort()).toEqual(['load_balancing_loss', 'z_loss']);
});
