/**
 * The layer on @kiln/gpu-kernels' ops (the default: `groupedMatMul`, `moeGatherRows` /
 * `moeScatterRows`) against the same layer on moe-core's references (per-expert tf.matMul,
 * tf gathers): outputs and every gradient, on `cpu` and on `kiln-native` (where the C++
 * kernels run), across the cases where the plans differ in shape — dropless, capacity
 * dropping by probs and by position, padding to capacity and to a row multiple, an expert
 * that receives no token, recomputation and offloading, GELU, shared experts.
 */
import { createRng, initBackend, tf } from '@kiln/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import type { MoEConfigInput } from '../config.js';
import { validateMoEConfig } from '../config.js';
import { KernelPermuter, ReferencePermuter } from '../dispatch/permute.js';
import { getGroupedGemm, kernelGroupedGemm, perExpertGemm } from '../experts/grouped-gemm.js';
import { getPermuter } from '../dispatch/permute.js';
import { MoELayer, type MoELayerOptions } from './moe-layer.js';
import { initMoEWeights, weightList } from './weights.js';

async function available(name: string): Promise<boolean> {
  try {
    await initBackend({ env: { KILN_BACKEND: name } });
    return true;
  } catch (err) {
    console.log(`[skip] ${name} layer kernel-path tests skipped: ${(err as Error).message}`);
    return false;
  } finally {
    await tf.setBackend('cpu');
  }
}
const BACKENDS = ['cpu', 'kiln-native'];
const present: Record<string, boolean> = {};
for (const b of BACKENDS) present[b] = await available(b);
afterAll(async () => {
  await tf.setBackend('cpu');
});

const base: MoEConfigInput = { numExperts: 4, topk: 2, hiddenSize: 8, ffnHiddenSize: 6 };
const CASES: [string, MoEConfigInput][] = [
  ['dropless', base],
  ['capacity 0.5, drop by probs', { ...base, capacityFactor: 0.5, dropPolicy: 'probs' }],
  ['capacity 0.75, drop by position, padded to capacity', { ...base, capacityFactor: 0.75, dropPolicy: 'position', padToCapacity: true }],
  ['rows padded to a multiple of 8', { ...base, padExpertRowsToMultiple: 8 }],
  ["recompute ['moe_act'] + offload ['fused_group_mlp']", { ...base, recomputeModules: ['moe_act'], offloadModules: ['fused_group_mlp'] }],
  ["GELU, recompute ['experts'], shared experts with gate", { ...base, activation: 'gelu', recomputeModules: ['experts'], sharedExpertSize: 5, sharedExpertGate: true }],
  ['one expert, top-1 pre-softmax', { ...base, numExperts: 1, topk: 1, routerPreSoftmax: true }],
];

/** Outputs, the input gradient and every weight gradient of one forward+backward. */
function run(input: MoEConfigInput, options: MoELayerOptions, starve: boolean) {
  const config = validateMoEConfig(input);
  const weights = initMoEWeights(config, createRng(3), { std: 0.3 });
  const T = 12;
  // positive tokens, and expert 1's router row −1: its logit is −Σx, far below the others
  const x = tf.add(tf.abs(createRng(4).normal([T, config.hiddenSize])), 0.1) as tf.Tensor2D;
  if (starve && config.numExperts > 1) {
    const w = weights.router.arraySync() as number[][];
    w[1] = w[1]!.map(() => -1);
    weights.router.assign(tf.tensor2d(w));
  }
  const dy = createRng(5).normal([T, config.hiddenSize]);
  const layer = new MoELayer(config, weights, options);
  const vars = weightList(weights);
  const xv = tf.variable(x);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(xv), dy)) as tf.Scalar, [xv, ...vars]);
  const out = layer.forward(x).arraySync();
  const result = {
    out,
    loss: value.arraySync(),
    grads: [xv, ...vars].map((v) => Array.from(grads[v.name]!.dataSync())),
    tokensPerExpert: Array.from(layer.stats.tokensPerExpert),
  };
  return result;
}

function expectClose(a: number[], b: number[], tol: number) {
  expect(a.length).toBe(b.length);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  expect(worst / (1e-6 + scale)).toBeLessThan(tol);
}

describe('MoELayer on gpu-kernels ops vs moe-core references', () => {
  it('uses the gpu-kernels ops by default', () => {
    expect(getPermuter()).toBeInstanceOf(KernelPermuter);
    expect(getGroupedGemm()).toBe(kernelGroupedGemm);
  });

  for (const backend of BACKENDS) {
    describe(backend, () => {
      for (const [name, cfg] of CASES) {
        it.skipIf(!present[backend])(`${name}: identical outputs and gradients, expert 1 receiving no token`, async () => {
          await initBackend({ env: { KILN_BACKEND: backend } });
          try {
            if (backend === 'kiln-native') {
              // the C++ kernels, not a fallback to the TypeScript loops
              const addon = (tf.backend() as unknown as { addon?: Record<string, unknown> }).addon;
              expect(typeof addon?.groupedMatMul).toBe('function');
              expect(typeof addon?.moeScatterRows).toBe('function');
            }
            const kernels = run(cfg, { permuter: new KernelPermuter(), groupedGemm: kernelGroupedGemm }, true);
            const reference = run(cfg, { permuter: new ReferencePermuter(), groupedGemm: perExpertGemm }, true);
            // padding to capacity fills expert 1 with probability-0 rows of unrouted tokens
            if ((cfg.numExperts ?? 4) > 1) expect(kernels.tokensPerExpert[1]).toBe(cfg.padToCapacity ? Math.ceil(((12 * 2) / 4) * 0.75) : 0);
            expect(kernels.tokensPerExpert).toEqual(reference.tokensPerExpert);
            expectClose(kernels.out.flat(), reference.out.flat(), 1e-5);
            expectClose([kernels.loss], [reference.loss], 1e-5);
            expect(kernels.grads.length).toBe(reference.grads.length);
            for (let i = 0; i < kernels.grads.length; i++) expectClose(kernels.grads[i]!, reference.grads[i]!, 1e-5);
          } finally {
            await tf.setBackend('cpu');
          }
        });
      }
    });
  }
});
