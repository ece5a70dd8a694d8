import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateMoEConfig } from '../config.js';
import { casesOf, expectClose } from '../fixtures/reference.js';
import { switchLoadBalancingLoss } from '../losses/load-balancing.js';
import { MoEMetricsTracker } from '../losses/metrics.js';
import { zLoss } from '../losses/z-loss.js';
import { TopKRouter } from './router.js';
import { computeRoutingScoresForAuxLoss, topkRouting } from './routing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const T = 12;
const H = 6;
const E = 4;

describe('TopKRouter', () => {
  it('adds the gradients of aux loss and z-loss to those of the main loss, and logs them per layer', () => {
    const config = validateMoEConfig({ numExperts: E, hiddenSize: H, ffnHiddenSize: 8, topk: 2, auxLossCoeff: 0.1, zLossCoeff: 0.01, numLayers: 2 });
    const tracker = new MoEMetricsTracker();
    const w0 = tf.randomNormal([E, H], 0, 0.5, 'float32', 11) as tf.Tensor2D;
    const router = new TopKRouter(config, { weight: w0, tracker, layerNumber: 2 });
    const x = tf.randomNormal([T, H], 0, 1, 'float32', 12) as tf.Tensor2D;
    const wMain = tf.randomNormal([T, E], 0, 1, 'float32', 13);

    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(router.forward(x).probs, wMain)) as tf.Scalar, [router.weight]);
    // Reference: main loss + aux + z computed explicitly, differentiated w.r.t. the weight.
    const ref = tf.grad((w: tf.Tensor) => {
      const logits = tf.matMul(x, w, false, true) as tf.Tensor2D;
      const { probs } = topkRouting(logits, { topk: 2 });
      const { scores, routingMap } = computeRoutingScoresForAuxLoss(logits, 2, 'softmax');
      const aux = switchLoadBalancingLoss(scores, tf.sum(tf.cast(routingMap, 'float32'), 0), T, 2, E, 0.1);
      return tf.addN([tf.sum(tf.mul(probs, wMain)), aux, zLoss(logits, 0.01)]);
    })(w0);
    expectClose(grads[router.weight.name]!.arraySync(), ref.arraySync(), 1e-4);
    const r = tracker.report();
    expect(r['load_balancing_loss']!.perLayer[0]).toBe(0);
    expect(r['load_balancing_loss']!.perLayer[1]).toBeGreaterThan(0.5);
    expect(r['z_loss']!.perLayer[1]).toBeGreaterThan(0);
  });

  it('evaluation skips losses; expert bias counts training tokens and updates per global batch', () => {
    const config = validateMoEConfig({
      numExperts: E,
      hiddenSize: H,
      ffnHiddenSize: 8,
      topk: 1,
      routerScoreFunction: 'sigmoid',
      routerEnableExpertBias: true,
      routerBiasUpdateRate: 0.01,
      routerLoadBalancingType: 'none',
    });
    const tracker = new MoEMetricsTracker();
    const router = new TopKRouter(config, { seed: 3, tracker });
    const x = tf.randomNormal([T, H], 0, 1, 'float32', 14) as tf.Tensor2D;
    router.forward(x, { training: false });
    expect(Array.from(router.expertBias!.localTokensPerExpert).reduce((a, b) => a + b)).toBe(0);
    const { routingMap } = router.forward(x);
    const counts = tf.sum(tf.cast(routingMap, 'float32'), 0).arraySync() as number[];
    expect(Array.from(router.expertBias!.localTokensPerExpert)).toEqual(counts);
    const bias = router.updateExpertBias()!;
    const mean = T / E;
    counts.forEach((c, i) => {
      expect(bias[i]).toBeCloseTo(Math.sign(mean - c) * 0.01, 7);
    });
    expect(tracker.names()).toEqual([]);
  });

  it('applies capacity dropping and sequence / global aux losses with Megatron scaling', () => {
    const config = validateMoEConfig({
      numExperts: E,
      hiddenSize: H,
      ffnHiddenSize: 8,
      topk: 2,
      routerLoadBalancingType: ['seq_aux_loss', 'global_aux_loss'],
      auxLossCoeff: [0.1, 0.2],
      capacityFactor: 0.5,
      calculatePerTokenLoss: true,
    });
    const tracker = new MoEMetricsTracker();
    const router = new TopKRouter(config, { seed: 5, tracker });
    const x = tf.randomNormal([T, H], 0, 1, 'float32', 15) as tf.Tensor2D;
    const { routingMap } = router.forward(x, { seqLength: 4, bsz: 3 });
    const perExpert = tf.sum(tf.cast(routingMap, 'float32'), 0).arraySync() as number[];
    // capacity = ceil(12·2 / 4 · 0.5) = 3
    for (const c of perExpert) expect(c).toBeLessThanOrEqual(3);
    expect(router.globalAuxTracker!.steps).toBe(1);
    expect(tracker.names().sort()).toEqual(['global_load_balancing_loss', 'seq_load_balancing_loss']);
    expect(() => router.forward(x, { seqLength: 5 })).toThrow(/seqLength/);
  });

  it('Sinkhorn routing through the config', () => {
    const config = validateMoEConfig({ numExperts: E, hiddenSize: H, ffnHiddenSize: 8, topk: 1, routerLoadBalancingType: 'sinkhorn' });
    const router = new TopKRouter(config, { seed: 9 });
    const { probs, routingMap } = router.forward(tf.randomNormal([T, H], 0, 1, 'float32', 16) as tf.Tensor2D);
    expect(probs.shape).toEqual([T, E]);
    expect(tf.sum(tf.cast(routingMap, 'int32')).dataSync()[0]).toBe(T);
  });
});

describe('TopKRouter.routing against a PyTorch port of Megatron TopKRouter.routing', () => {
  for (const [n, c] of casesOf('router').entries()) {
    const cfg = c.config;
    it(`case ${n}: ${cfg.fn} k=${cfg.topk}${cfg.aux ? ' aux' : ''}${cfg.seq ? ' seq' : ''}${cfg.glob ? ' global' : ''}${cfg.z ? ' z' : ''}${cfg.factor ? ` capacity ${cfg.factor}` : ''}`, () => {
      const types: Array<'aux_loss' | 'seq_aux_loss' | 'global_aux_loss'> = [];
      const coeffs: number[] = [];
      if (cfg.aux) {
        types.push('aux_loss');
        coeffs.push(cfg.aux);
      }
      if (cfg.seq) {
        types.push('seq_aux_loss');
        coeffs.push(cfg.seq);
      }
      if (cfg.glob) {
        types.push('global_aux_loss');
        coeffs.push(cfg.glob);
      }
      const config = validateMoEConfig({
        numExperts: 8,
        hiddenSize: 4,
        topk: cfg.topk,
        routerScoreFunction: cfg.fn,
        routerPreSoftmax: cfg.pre ?? false,
        routerNumGroups: cfg.num_groups ?? null,
        routerGroupTopk: cfg.group_topk ?? null,
        routerTopkScalingFactor: cfg.scaling ?? null,
        routerLoadBalancingType: types,
        auxLossCoeff: coeffs,
        zLossCoeff: cfg.z ?? null,
        capacityFactor: cfg.factor ?? null,
        dropPolicy: cfg.policy ?? 'probs',
        padToCapacity: cfg.pad ?? false,
        calculatePerTokenLoss: cfg.per_token ?? false,
      });
      const router = new TopKRouter(config, { seed: 1, tracker: new MoEMetricsTracker() });
      for (const step of c.steps) {
        const logits = tf.tensor2d(step.logits);
        const w = tf.tensor2d(step.weights);
        let probs: tf.Tensor2D | null = null;
        let map: tf.Tensor2D | null = null;
        const g = tf.grad((l: tf.Tensor) => {
          const out = router.routing(l as tf.Tensor2D, { seqLength: c.seqLength, bsz: c.bsz });
          probs = tf.keep(out.probs);
          map = tf.keep(out.routingMap);
          return tf.sum(tf.mul(out.probs, w));
        })(logits);
        expect(tf.cast(map!, 'int32').arraySync()).toEqual(step.map);
        expectClose(probs!.arraySync(), step.probs);
        expectClose(g.arraySync(), step.grad, 1e-4);
      }
    });
  }
});
