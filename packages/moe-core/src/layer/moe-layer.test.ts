import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyTokenDropping } from '../capacity/capacity.js';
import { type MoEConfigInput, validateMoEConfig } from '../config.js';
import { swiglu } from '../experts/activation.js';
import { MoEMetricsTracker } from '../losses/metrics.js';
import { TopKRouter } from '../router/router.js';
import { MoELayer } from './moe-layer.js';
import { initMoEWeights, weightList } from './weights.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const base: MoEConfigInput = { numExperts: 4, topk: 2, hiddenSize: 8, ffnHiddenSize: 6 };

function build(input: MoEConfigInput, seed = 1) {
  const config = validateMoEConfig(input);
  const weights = initMoEWeights(config, createRng(seed), { std: 0.3 });
  return { config, weights, layer: new MoELayer(config, weights) };
}

/** Every token through its chosen experts, densely, with an explicit keep mask (independent of permute). */
function denseReference(x: tf.Tensor2D, w: ReturnType<typeof build>['weights'], topk: number, keep?: (probs: Float32Array, mask: Float32Array) => Float32Array) {
  const [T] = x.shape;
  const E = w.router.shape[0]!;
  const logits = tf.matMul(x, w.router, false, true);
  const l = logits.dataSync();
  const mask = new Float32Array(T * E);
  for (let t = 0; t < T; t++) {
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => l[t * E + b]! - l[t * E + a]! || a - b);
    for (const e of order.slice(0, topk)) mask[t * E + e] = 1;
  }
  const m = tf.tensor2d(mask, [T, E], 'bool' as never);
  let probs = tf.softmax(tf.where(tf.cast(m, 'bool'), logits, tf.fill([T, E], Number.NEGATIVE_INFINITY)), -1) as tf.Tensor2D;
  if (keep) probs = tf.mul(probs, tf.tensor2d(keep(probs.dataSync() as Float32Array, mask), [T, E])) as tf.Tensor2D;
  let out: tf.Tensor = tf.zeros(x.shape);
  for (let e = 0; e < E; e++) {
    const w1 = tf.squeeze(tf.slice(w.fc1, [e, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
    const w2 = tf.squeeze(tf.slice(w.fc2, [e, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
    const y = tf.matMul(swiglu(tf.matMul(x, w1)), w2);
    out = tf.add(out, tf.mul(y, tf.slice(probs, [0, e], [T, 1])));
  }
  return out as tf.Tensor2D;
}

function expectClose(a: tf.Tensor, b: tf.Tensor, tol = 1e-5) {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (1e-3 + Math.abs(y[i]!)));
  expect(worst).toBeLessThan(tol);
}

describe('MoELayer', () => {
  it('matches a dense reference (every token through its top-k experts, weighted by probs): outputs and gradients', () => {
    const { weights, layer } = build(base);
    const x = createRng(9).normal([12, 8]) as tf.Tensor2D;
    const dy = createRng(10).normal([12, 8]);
    const loss = (f: (h: tf.Tensor2D) => tf.Tensor) => () => tf.sum(tf.mul(f(x), dy)) as tf.Scalar;
    expectClose(layer.forward(x), denseReference(x, weights, 2));
    const vars = weightList(weights);
    const g1 = tf.variableGrads(loss((h) => layer.forward(h)), vars).grads;
    const g2 = tf.variableGrads(loss((h) => denseReference(h, weights, 2)), vars).grads;
    for (const v of vars) expectClose(g1[v.name]!, g2[v.name]!, 1e-4);
    const [gx1] = tf.grads((h: tf.Tensor) => tf.sum(tf.mul(layer.forward(h as tf.Tensor2D), dy)))([x]);
    const [gx2] = tf.grads((h: tf.Tensor) => tf.sum(tf.mul(denseReference(h as tf.Tensor2D, weights, 2), dy)))([x]);
    expectClose(gx1!, gx2!, 1e-4);
    let routed = 0;
    for (const c of layer.stats.tokensPerExpert) routed += c;
    expect(routed).toBe(12 * 2);
  });

  it('drops tokens over capacity by probability at the layer level, and padding to capacity changes nothing', () => {
    const cfg = { ...base, capacityFactor: 0.5 };
    const { weights, layer } = build(cfg);
    const x = createRng(11).normal([16, 8]) as tf.Tensor2D;
    const capacity = Math.ceil(((16 * 2) / 4) * 0.5); // 4 rows per expert
    const keepTopByProb = (probs: Float32Array, mask: Float32Array) => {
      const keep = new Float32Array(mask.length);
      for (let e = 0; e < 4; e++) {
        const tokens = Array.from({ length: 16 }, (_, t) => t).filter((t) => mask[t * 4 + e]);
        tokens.sort((a, b) => probs[b * 4 + e]! - probs[a * 4 + e]! || a - b);
        for (const t of tokens.slice(0, capacity)) keep[t * 4 + e] = 1;
      }
      return keep;
    };
    const out = layer.forward(x);
    expect(Math.max(...layer.stats.tokensPerExpert)).toBeLessThanOrEqual(capacity);
    expect(layer.stats.capacity).toBe(capacity);
    expectClose(out, denseReference(x, weights, 2, keepTopByProb));
    // dropping really happened: the dropless output differs
    const dropless = build(base).layer.forward(x);
    expect(tf.max(tf.abs(tf.sub(out, dropless))).dataSync()[0]).toBeGreaterThan(1e-4);
    const padded = new MoELayer(validateMoEConfig({ ...cfg, padToCapacity: true }), weights);
    expectClose(padded.forward(x), out);
    expect(Array.from(padded.stats.tokensPerExpert)).toEqual([capacity, capacity, capacity, capacity]);
  });

  it("'position' drop policy: the layer keeps exactly the tokens applyTokenDropping keeps (torch.topk over the routing column)", () => {
    const cfg = { ...base, capacityFactor: 0.5, dropPolicy: 'position' as const };
    const { weights, layer } = build(cfg);
    const x = createRng(12).normal([16, 8]) as tf.Tensor2D;
    const keepByPosition = (probs: Float32Array, mask: Float32Array) => {
      const kept = applyTokenDropping(tf.tensor2d(probs, [16, 4]), tf.cast(tf.tensor2d(mask, [16, 4]), 'bool') as tf.Tensor2D, {
        topk: 2,
        capacityFactor: 0.5,
        dropPolicy: 'position',
      });
      return Float32Array.from(tf.cast(kept.routingMap, 'float32').dataSync());
    };
    const out = layer.forward(x);
    expect(Math.max(...layer.stats.tokensPerExpert)).toBeLessThanOrEqual(4);
    expectClose(out, denseReference(x, weights, 2, keepByPosition));
  });

  it('shared experts with a sigmoid gate are added to the routed output', () => {
    const cfg = { ...base, sharedExpertSize: 5, sharedExpertGate: true };
    const { weights, layer } = build(cfg);
    const x = createRng(13).normal([6, 8]) as tf.Tensor2D;
    const shared = tf.mul(tf.matMul(swiglu(tf.matMul(x, weights.sharedFc1!)), weights.sharedFc2!), tf.sigmoid(tf.matMul(x, weights.sharedGate!)));
    expectClose(layer.forward(x), tf.add(denseReference(x, weights, 2), shared));
  });

  it('aux and z losses are logged per call and reach the router gradient by injection (not through the output)', () => {
    const x = createRng(15).normal([12, 8]) as tf.Tensor2D;
    const dy = createRng(16).normal([12, 8]);
    const routerGrad = (extra: Partial<MoEConfigInput>) => {
      const { weights, layer } = build({ ...base, ...extra });
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, [weights.router]);
      return { value: value.dataSync()[0]!, g: grads[weights.router.name]!, layer };
    };
    const plain = routerGrad({});
    const withAux = routerGrad({ auxLossCoeff: 1, zLossCoeff: 0.1 });
    expect(withAux.value).toBeCloseTo(plain.value, 5); // identity in forward
    expect(withAux.layer.stats.losses.aux_loss).toBeGreaterThan(0.9); // ≈ coeff near balance
    expect(withAux.layer.stats.losses.z_loss).toBeGreaterThan(0);
    expect(tf.max(tf.abs(tf.sub(withAux.g, plain.g))).dataSync()[0]).toBeGreaterThan(1e-3);
  });

  it('a gradient step on the injected aux loss alone lowers it (the injected gradient has the right sign)', () => {
    const { weights, layer } = build({ ...base, auxLossCoeff: 1 });
    // skewed inputs: most tokens prefer the same experts
    const x = tf.add(createRng(17).normal([32, 8]), tf.tensor1d([2, 0, 0, 0, 0, 0, 0, 1])) as tf.Tensor2D;
    const zero = tf.zeros([32, 8]);
    const opt = tf.train.sgd(0.5);
    layer.forward(x);
    const first = layer.stats.losses.aux_loss!;
    for (let i = 0; i < 5; i++) opt.minimize(() => tf.sum(tf.mul(layer.forward(x), zero)) as tf.Scalar, false, [weights.router]);
    layer.forward(x);
    expect(layer.stats.losses.aux_loss!).toBeLessThan(first);
  });

  it("routes with TopKRouter on the layer's weight: losses logged once per forward under the layer number, also when the whole layer is recomputed", () => {
    const x = createRng(18).normal([12, 8]) as tf.Tensor2D;
    const dy = createRng(19).normal([12, 8]);
    const extra: MoEConfigInput = { ...base, numLayers: 2, routerLoadBalancingType: 'global_aux_loss', auxLossCoeff: 0.1, zLossCoeff: 0.01 };
    const run = (recomputeModules: MoEConfigInput['recomputeModules']) => {
      const config = validateMoEConfig({ ...extra, recomputeModules });
      const weights = initMoEWeights(config, createRng(1), { std: 0.3 });
      const tracker = new MoEMetricsTracker();
      const layer = new MoELayer(config, weights, { layerNumber: 2, tracker });
      expect(layer.router).toBeInstanceOf(TopKRouter);
      expect(layer.router.weight).toBe(weights.router);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, weightList(weights));
      return { layer, tracker, g: grads[weights.router.name]!.dataSync() };
    };
    const plain = run([]);
    const again = run(['moe']);
    for (const r of [plain, again]) {
      // one micro-batch counted, one value per loss, logged for layer 2 only
      expect(r.layer.router.globalAuxTracker!.steps).toBe(1);
      expect(r.tracker.get('global_load_balancing_loss')![0]).toBe(0);
      expect(r.tracker.get('global_load_balancing_loss')![1]).toBeCloseTo(r.layer.stats.losses.global_aux_loss! / 0.1, 5);
      expect(r.tracker.get('z_loss')![1]).toBeCloseTo(r.layer.stats.losses.z_loss! / 0.01, 5);
    }
    expect(Array.from(again.g)).toEqual(Array.from(plain.g).map((v, i) => (Math.abs(v - again.g[i]!) < 1e-6 ? again.g[i] : v)));
  });

  it('rejects hidden states of the wrong width, naming the shape', () => {
    const { layer } = build(base);
    expect(() => layer.forward(tf.zeros([3, 5]) as tf.Tensor2D)).toThrow(/hidden shape \[3,5\]/);
  });
});

describe('low-precision experts', () => {
  for (const [name, extra] of [
    ['FP8 tensorwise (hybrid)', { fp8: 'hybrid', fp8Recipe: 'tensorwise' }],
    ['FP8 blockwise', { fp8: 'e4m3', fp8Recipe: 'blockwise' }],
    ['NVFP4', { fp4: 'e2m1' }],
  ] as const) {
    it(`${name}: expert GEMMs run quantize–dequantize (close to fp32, not equal), rows padded to the recipe's alignment, gradients flow`, () => {
      const x = createRng(14).normal([20, 8]) as tf.Tensor2D;
      const { weights, layer: fp32 } = build({ ...base, ffnHiddenSize: 16 });
      const low = new MoELayer(validateMoEConfig({ ...base, ffnHiddenSize: 16, ...extra }), weights);
      const a = fp32.forward(x);
      const b = low.forward(x);
      const diff = tf.norm(tf.sub(a, b)).dataSync()[0]! / tf.norm(a).dataSync()[0]!;
      expect(diff).toBeGreaterThan(1e-5);
      expect(diff).toBeLessThan(name === 'NVFP4' ? 0.5 : 0.15);
      const align = name === 'NVFP4' ? 128 : 16;
      const plan = low.permute.plan({ probs: tf.zeros([20, 4]) as tf.Tensor2D, routingMap: new Uint8Array(80).fill(1), capacity: null }, 20);
      for (const r of plan.rowsPerExpert) expect(r % align).toBe(0);
      const g = tf.variableGrads(() => tf.sum(tf.square(low.forward(x))) as tf.Scalar, [weights.fc1, weights.fc2]).grads;
      expect(Number.isFinite(tf.sum(tf.abs(g[weights.fc1.name]!)).dataSync()[0]!)).toBe(true);
      expect(tf.sum(tf.abs(g[weights.fc2.name]!)).dataSync()[0]!).toBeGreaterThan(0);
    });
  }
});

describe('memory: recomputation and offloading', () => {
  const cfg: MoEConfigInput = { ...base, sharedExpertSize: 4, sharedExpertGate: true, auxLossCoeff: 0.01, zLossCoeff: 0.001 };
  const x = createRng(21).normal([10, 8]) as tf.Tensor2D;
  const dy = createRng(22).normal([10, 8]);

  function grads(extra: Partial<MoEConfigInput>) {
    const config = validateMoEConfig({ ...cfg, ...extra });
    const weights = initMoEWeights(config, createRng(5), { std: 0.3 });
    const layer = new MoELayer(config, weights);
    const vars = weightList(weights);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, vars);
    const [gx] = tf.grads((h: tf.Tensor) => tf.sum(tf.mul(layer.forward(h as tf.Tensor2D), dy)))([x]);
    return { value: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!), gx: gx!, layer };
  }

  const plain = () => grads({});
  for (const modules of [['moe'], ['experts'], ['moe_act'], ['shared_experts'], ['moe_act', 'shared_experts']] as const) {
    it(`recomputing ${modules.join('+')} gives identical gradients`, () => {
      const a = plain();
      const b = grads({ recomputeModules: [...modules] });
      expect(b.value).toBe(a.value);
      a.grads.forEach((g, i) => {
      expectClose(b.grads[i]!, g, 1e-5);
    });
      expectClose(b.gx, a.gx, 1e-5);
    });
  }

  it('offloading expert activations to the host round-trips them and keeps gradients', () => {
    const a = plain();
    const b = grads({ offloadModules: ['fused_group_mlp'] });
    a.grads.forEach((g, i) => {
      expectClose(b.grads[i]!, g, 1e-5);
    });
    const off = b.layer.offloader;
    expect(off.offloadedBytes).toBeGreaterThan(0);
    expect(off.reloadedBytes).toBe(off.offloadedBytes);
    expect(off.hostBytes).toBe(0);
  });
});

describe('groupedGemm: false', () => {
  it('runs a per-expert loop of tf.matMul instead of the grouped kernel, with the same values and gradients', async () => {
    const x = createRng(30).normal([24, 8]) as tf.Tensor2D;
    const dy = createRng(31).normal([24, 8]);
    const run = (groupedGemm: boolean) => {
      const { weights, layer } = build({ ...base, groupedGemm });
      const vars = weightList(weights);
      return { layer, vars, step: () => tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, vars) };
    };
    const grouped = run(true);
    const loop = run(false);
    expect(grouped.layer.experts.mlp.gemms.fc1.name).toBe('gpu-kernels');
    expect(loop.layer.experts.mlp.gemms.fc1.name).toBe('per-expert');
    const kernelsOf = async (r: ReturnType<typeof run>) => {
      let out!: ReturnType<ReturnType<typeof run>['step']>;
      const info = await tf.profile(() => {
        out = r.step();
        return out.value;
      });
      return { names: info.kernelNames, kernels: info.kernels, out };
    };
    const a = await kernelsOf(grouped);
    const b = await kernelsOf(loop);
    // the grouped path runs gpu-kernels' op; the loop one BatchMatMul per expert and GEMM, forward and backward
    expect(a.names).toContain('KilnGroupedMatMul');
    expect(b.names).not.toContain('KilnGroupedMatMul');
    expect(b.kernels.filter((k) => k.name === 'BatchMatMul').length).toBeGreaterThanOrEqual(2 * 4 * 2);
    expectClose(b.out.value, a.out.value);
    for (const v of grouped.vars) expectClose(b.out.grads[loop.vars[grouped.vars.indexOf(v)]!.name]!, a.out.grads[v.name]!, 1e-4);
  });
});

describe('evaluation mode', () => {
  it('training: false applies no jitter, attaches no aux or z loss, counts no tokens and leaves the stats alone', () => {
    const cfg: MoEConfigInput = {
      ...base,
      routerScoreFunction: 'sigmoid',
      routerEnableExpertBias: true,
      routerLoadBalancingType: ['aux_loss', 'global_aux_loss'],
      auxLossCoeff: [0.5, 0.5],
      zLossCoeff: 0.1,
      inputJitterEps: 0.2,
    };
    const config = validateMoEConfig(cfg);
    const weights = initMoEWeights(config, createRng(3), { std: 0.3 });
    const tracker = new MoEMetricsTracker();
    const layer = new MoELayer(config, weights, { rng: createRng(4), tracker });
    const plain = new MoELayer(validateMoEConfig({ ...base, routerScoreFunction: 'sigmoid' }), weights);
    const x = createRng(32).normal([16, 8]) as tf.Tensor2D;
    const dy = createRng(33).normal([16, 8]);
    layer.forward(x); // one training forward: counts and stats
    const stats = layer.stats;
    const bias = layer.router.expertBias!;
    const counted = Array.from(bias.localTokensPerExpert);
    const steps = layer.router.globalAuxTracker!.steps;
    const logged = tracker.get('z_loss');
    const evalGrad = (l: MoELayer) => tf.variableGrads(() => tf.sum(tf.mul(l.forward(x, { training: false }), dy)) as tf.Scalar, weightList(weights)).grads;
    const e1 = layer.forward(x, { training: false });
    const e2 = layer.forward(x, { training: false });
    expect(Array.from(e1.dataSync())).toEqual(Array.from(e2.dataSync())); // no jitter
    expectClose(e1, plain.forward(x, { training: false }), 1e-6);
    const g = evalGrad(layer);
    const gPlain = evalGrad(plain);
    expectClose(g[weights.router.name]!, gPlain[weights.router.name]!, 1e-6); // no aux / z gradient injected
    expect(layer.stats).toBe(stats);
    expect(Array.from(bias.localTokensPerExpert)).toEqual(counted);
    expect(layer.router.globalAuxTracker!.steps).toBe(steps);
    expect(tracker.get('z_loss')).toEqual(logged);
  });

  it('endStep updates the expert bias and starts a fresh global aux-loss count', () => {
    const config = validateMoEConfig({ ...base, routerScoreFunction: 'sigmoid', routerEnableExpertBias: true, routerLoadBalancingType: 'global_aux_loss', auxLossCoeff: 0.1 });
    const layer = new MoELayer(config, initMoEWeights(config, createRng(3), { std: 0.3 }));
    const x = tf.add(createRng(34).normal([16, 8]), tf.tensor1d([3, 0, 0, 0, 0, 0, 0, 0])) as tf.Tensor2D;
    layer.forward(x);
    layer.forward(x);
    expect(layer.router.globalAuxTracker!.steps).toBe(2);
    layer.endStep();
    expect(layer.router.globalAuxTracker!.steps).toBe(0);
    expect(Array.from(layer.router.expertBias!.bias).some((b) => b !== 0)).toBe(true);
    expect(Array.from(layer.router.expertBias!.localTokensPerExpert).every((c) => c === 0)).toBe(true);
  });
});

describe('low-precision experts with recomputation and offloading', () => {
  const x = createRng(40).normal([24, 16]) as tf.Tensor2D;
  const dy = createRng(41).normal([24, 16]);
  const cfg16: MoEConfigInput = { ...base, hiddenSize: 16, ffnHiddenSize: 16 };
  function grads(extra: Partial<MoEConfigInput>) {
    const config = validateMoEConfig({ ...cfg16, ...extra });
    const weights = initMoEWeights(config, createRng(6), { std: 0.3 });
    const layer = new MoELayer(config, weights);
    const vars = weightList(weights);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, vars);
    return { value: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!), layer };
  }
  for (const [name, lowp] of [
    ['FP8 tensorwise', { fp8: 'hybrid', fp8Recipe: 'tensorwise' }],
    ['FP8 MXFP8', { fp8: 'e4m3', fp8Recipe: 'mxfp8' }],
    ['NVFP4', { fp4: 'e2m1' }],
  ] as const) {
    it(`${name}: 'moe_act' recompute and every offload module run the quantized GEMMs with the same gradients`, () => {
      const plain = grads({ ...lowp });
      const exact = grads({});
      expect(Math.abs(plain.value - exact.value)).toBeGreaterThan(1e-6); // quantized, not fp32
      const extras: Partial<MoEConfigInput>[] = [
        { recomputeModules: ['moe_act'] },
        { offloadModules: ['expert_fc1'] },
        { offloadModules: ['moe_act'] },
        { offloadModules: ['fused_group_mlp'], recomputeModules: ['moe_act'] },
      ];
      for (const extra of extras) {
        const r = grads({ ...lowp, ...extra });
        expect(r.value).toBe(plain.value);
        for (const [i, g] of r.grads.entries()) expectClose(g, plain.grads[i]!, 1e-5);
        if ('offloadModules' in extra) {
          expect(r.layer.offloader.offloadedBytes).toBeGreaterThan(0);
          expect(r.layer.offloader.reloadedBytes).toBe(r.layer.offloader.offloadedBytes);
        }
      }
    });
  }

  it('delayed scaling keeps one amax history per expert GEMM operand and rolls each once per step', () => {
    const config = validateMoEConfig({ ...cfg16, fp8: 'e4m3', fp8Recipe: 'delayed', fp8AmaxHistoryLen: 8, fp8AmaxComputeAlgo: 'max' });
    const weights = initMoEWeights(config, createRng(6), { std: 0.3 });
    const layer = new MoELayer(config, weights);
    const fp32 = new MoELayer(validateMoEConfig(cfg16), weights);
    const recipe = layer.experts.recipe;
    if (recipe.kind !== 'fp8' || !recipe.delayed) throw new Error('expected a delayed FP8 recipe');
    const table = recipe.delayed;
    const opt = tf.train.sgd(0.01);
    for (let step = 1; step <= 3; step++) {
      const y = layer.forward(x);
      const err = tf.norm(tf.sub(y, fp32.forward(x))).dataSync()[0]! / tf.norm(fp32.forward(x)).dataSync()[0]!;
      expect(err).toBeGreaterThan(0); // quantized
      expect(err).toBeLessThan(0.5);
      opt.minimize(() => tf.sum(tf.mul(layer.forward(x), dy)) as tf.Scalar, false, weightList(weights));
      layer.endStep();
      // 2 GEMMs × 4 experts (each routed some rows) × input, weight, grad
      expect(table.tensors.length).toBe(2 * 4 * 3);
      expect(table.steps).toBe(step);
      for (const t of table.tensors) {
        const s = table.state(t, 'input');
        // one history entry per step, whatever the number of GEMMs and recomputed forwards
        expect(Array.from(s.amaxHistory).filter((v) => v > 0).length, t).toBe(step);
        // this step's scale: fmax / max(history), E5M2 for no tensor (format e4m3)
        expect(s.scale, t).toBe(Math.fround(448 / Math.max(...s.amaxHistory)));
      }
    }
    // fc1's and fc2's tensors, and each expert's, have their own histories
    expect(table.state('fc1.0.input', 'input').scale).not.toBe(table.state('fc2.0.input', 'input').scale);
    expect(table.state('fc1.0.weight', 'weight').scale).not.toBe(table.state('fc1.1.weight', 'weight').scale);
  });
});
