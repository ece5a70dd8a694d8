/**
 * What recomputation and activation offloading save, measured on the tfjs backend: the bytes
 * held for backward once forward has finished (what every micro-batch in flight keeps), and
 * the peak over forward + backward (`measurePeakBytes`), for a stack of MoE layers.
 */
import { createRng, measurePeakBytes, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type MoEConfigInput, validateMoEConfig } from '../config.js';
import { MoELayer } from '../layer/moe-layer.js';
import { initMoEWeights, weightList } from '../layer/weights.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const T = 128;
const H = 16;
const F = 64;
const LAYERS = 4;
const base: MoEConfigInput = { numExperts: 4, topk: 2, hiddenSize: H, ffnHiddenSize: F };

/** Identity whose gradient records the backend's bytes when backward reaches it. */
function probe(record: (bytes: number) => void) {
  const f = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.clone(x),
    gradFunc: (dy: tf.Tensor) => {
      record(tf.memory().numBytes);
      return dy;
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x: tf.Tensor) => f(x) as tf.Tensor;
}

async function measure(extra: Partial<MoEConfigInput>) {
  const config = validateMoEConfig({ ...base, ...extra });
  const rng = createRng(0);
  const layers = Array.from({ length: LAYERS }, () => {
    const weights = initMoEWeights(config, rng.fork(), { std: 0.1 });
    return { weights, layer: new MoELayer(config, weights) };
  });
  const x = tf.variable(createRng(1).normal([T, H]));
  const dy = createRng(2).normal([T, H]);
  const vars = [x, ...layers.flatMap((l) => weightList(l.weights))];
  let held = 0;
  const atOutput = probe((b) => {
    held = b;
  });
  const step = async () => {
    const grads = tf.grads(() => atOutput(layers.reduce((h: tf.Tensor, l) => tf.add(h, l.layer.forward(h as tf.Tensor2D)), x)))(vars, dy);
    await grads[0]!.data();
    tf.dispose(grads);
  };
  await step(); // warm-up (kernels, caches)
  const { peakBytes, startBytes } = await measurePeakBytes(step);
  const offloaded = layers.reduce((n, l) => n + l.layer.offloader.offloadedBytes, 0) / 2;
  for (const l of layers) expect(l.layer.offloader.hostBytes).toBe(0);
  tf.dispose([x, dy, ...vars]);
  return { peak: peakBytes - startBytes, heldForBackward: held - startBytes, offloaded };
}

describe('memory of recomputation and offloading (4 MoE layers, forward + backward)', () => {
  it('each option lowers the peak; offloading lowers the bytes held for backward beyond moe_act recompute, by the bytes it moves', async () => {
    const baseline = await measure({});
    const rows = T * 2 * 4; // T tokens × top-2 rows per layer, 4 bytes a value
    const moeAct = await measure({ recomputeModules: ['moe_act'] });
    const moe = await measure({ recomputeModules: ['moe'] });
    const actAndFc1 = await measure({ recomputeModules: ['moe_act'], offloadModules: ['expert_fc1'] });
    const fused = await measure({ offloadModules: ['fused_group_mlp'] });
    const table = { baseline, moeAct, moe, actAndFc1, fused };
    console.log(Object.entries(table).map(([k, v]) => `${k}: peak ${(v.peak / 1024).toFixed(0)} KiB, held for backward ${(v.heldForBackward / 1024).toFixed(0)} KiB, offloaded ${(v.offloaded / 1024).toFixed(0)} KiB`).join('\n'));
    // Peaks: the grouped MLP's own backward frees each activation once used (tfjs holds
    // everything else a backward makes until it ends), so the peak falls well below the baseline.
    for (const v of [moeAct, moe, actAndFc1, fused]) expect(v.peak).toBeLessThan(0.75 * baseline.peak);
    // Held for backward: moe_act keeps fc1's input and output, not the activation;
    // offloading fc1's input moves exactly those bytes off the backend; fused_group_mlp all three.
    expect(moeAct.heldForBackward).toBeLessThan(baseline.heldForBackward);
    expect(moe.heldForBackward).toBeLessThan(moeAct.heldForBackward);
    expect(actAndFc1.offloaded).toBe(LAYERS * rows * H);
    expect(moeAct.heldForBackward - actAndFc1.heldForBackward).toBe(actAndFc1.offloaded);
    expect(fused.offloaded).toBe(LAYERS * rows * (H + 2 * F + F));
    expect(fused.heldForBackward).toBeLessThan(actAndFc1.heldForBackward);
  });
});
