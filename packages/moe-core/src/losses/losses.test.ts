import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { casesOf, expectClose } from '../fixtures/reference.js';
import { computeRoutingScoresForAuxLoss } from '../router/routing.js';
import { attachAuxLoss, setAuxLossScale } from './auto-scaler.js';
import { GlobalAuxLossTracker, globalAuxLoss, sequenceAuxLoss, switchLoadBalancingLoss } from './load-balancing.js';
import { MoEMetricsTracker } from './metrics.js';
import { zLoss } from './z-loss.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('losses against Megatron-Core (PyTorch reference), values and gradients', () => {
  for (const c of casesOf('loss')) {
    it(`${c.fn} scores: aux, sequence aux and z-loss`, () => {
      const logits = tf.tensor2d(c.logits as number[][]);
      const E = logits.shape[1];
      const T = logits.shape[0];
      const aux = (l: tf.Tensor) => {
        const { scores, routingMap } = computeRoutingScoresForAuxLoss(l as tf.Tensor2D, c.topk, c.fn);
        const tpe = tf.sum(tf.cast(routingMap, 'float32'), 0);
        return switchLoadBalancingLoss(scores, tpe, T, c.topk, E, c.coeff);
      };
      expect(aux(logits).dataSync()[0]).toBeCloseTo(c.aux, 6);
      expectClose(tf.grad(aux)(logits).arraySync(), c.auxGrad, 1e-4);

      const seq = (l: tf.Tensor) => {
        const { scores, routingMap } = computeRoutingScoresForAuxLoss(l as tf.Tensor2D, c.topk, c.fn);
        return sequenceAuxLoss(scores, routingMap, c.seqLength, c.bsz, c.topk, E, c.coeff);
      };
      expect(seq(logits).dataSync()[0]).toBeCloseTo(c.seqAux, 6);
      expectClose(tf.grad(seq)(logits).arraySync(), c.seqGrad, 1e-4);

      const z = (l: tf.Tensor) => zLoss(l as tf.Tensor2D, c.zCoeff);
      expect(z(logits).dataSync()[0]).toBeCloseTo(c.z, 6);
      expectClose(tf.grad(z)(logits).arraySync(), c.zGrad, 1e-4);
    });
  }
});

describe('switchLoadBalancingLoss', () => {
  it('equals coeff at perfect balance', () => {
    // 4 tokens, 4 experts, top-1, uniform probabilities and one token each.
    const probs = tf.fill([4, 4], 0.25) as tf.Tensor2D;
    expect(switchLoadBalancingLoss(probs, [1, 1, 1, 1], 4, 1, 4, 0.01).dataSync()[0]).toBeCloseTo(0.01, 8);
    // top-2 of 8 experts over 16 tokens: 4 copies per expert.
    const p8 = tf.fill([16, 8], 1 / 8) as tf.Tensor2D;
    expect(switchLoadBalancingLoss(p8, new Array(8).fill(4), 16, 2, 8, 0.1).dataSync()[0]).toBeCloseTo(0.1, 7);
  });

  it('excludes padding rows and validates shapes', () => {
    const probs = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const l = switchLoadBalancingLoss(probs, [1, 1], 2, 1, 2, 1, tf.tensor1d([1, 0]));
    expect(l.dataSync()[0]).toBeCloseTo((2 / 4) * 1, 7);
    expect(() => switchLoadBalancingLoss(probs, [1, 1, 1], 2, 1, 2, 1)).toThrow(/tokensPerExpert has 3/);
    expect(() => switchLoadBalancingLoss(probs, [1, 1], 2, 1, 3, 1)).toThrow(/numExperts is 3/);
  });

  it('sequence aux loss is the mean of per-sequence Switch losses in either token order', () => {
    const S = 3;
    const B = 2;
    const E = 4;
    const logits = tf.randomNormal([S * B, E], 0, 1, 'float32', 5) as tf.Tensor2D;
    const { scores, routingMap } = computeRoutingScoresForAuxLoss(logits, 2, 'softmax');
    const got = sequenceAuxLoss(scores, routingMap, S, B, 2, E, 0.5).dataSync()[0]!;
    // per sequence b: rows s·B + b
    let expected = 0;
    for (let b = 0; b < B; b++) {
      const rows = tf.tensor1d(Array.from({ length: S }, (_, s) => s * B + b), 'int32');
      const sc = tf.gather(scores, rows) as tf.Tensor2D;
      const m = tf.sum(tf.cast(tf.gather(routingMap, rows), 'float32'), 0);
      expected += switchLoadBalancingLoss(sc, m, S, 2, E, 0.5).dataSync()[0]! / B;
    }
    expect(got).toBeCloseTo(expected, 6);
    // batch-major layout of the same tokens gives the same loss
    const perm = tf.tensor1d(
      Array.from({ length: S * B }, (_, i) => (i % S) * B + Math.floor(i / S)),
      'int32',
    );
    const bs = sequenceAuxLoss(tf.gather(scores, perm) as tf.Tensor2D, tf.gather(routingMap, perm) as tf.Tensor2D, S, B, 2, E, 0.5, {
      order: 'bs',
    });
    expect(bs.dataSync()[0]).toBeCloseTo(expected, 6);
  });
});

describe('global aux loss', () => {
  it('uses counts summed over ranks and averaged over micro-batches', () => {
    const tracker = new GlobalAuxLossTracker(2);
    const scores = tf.tensor2d([
      [0.75, 0.25],
      [0.5, 0.5],
    ]);
    const map = tf.cast(
      tf.tensor2d([
        [1, 0],
        [1, 0],
      ]),
      'bool',
    ) as tf.Tensor2D;
    // another rank routed [0, 2]: all-reduced counts = [2, 2]
    const l1 = globalAuxLoss(scores, map, tracker, 1, 2, 1, { reduceGroupSize: 2, allReduce: (c) => [c[0]! + 0, c[1]! + 2] });
    // Σp = [1.25, 0.75]; counts [2,2]; T = 2·2 = 4: 2/(1·16)·(1.25·2 + 0.75·2) = 0.5
    expect(l1.dataSync()[0]).toBeCloseTo(0.5, 7);
    // second micro-batch with counts [4, 0]: average [3, 1]
    const l2 = globalAuxLoss(scores, map, tracker, 1, 2, 1, { reduceGroupSize: 2, allReduce: (c) => [c[0]! + 2, c[1]!] });
    expect(tracker.steps).toBe(2);
    expect(Array.from(tracker.averaged())).toEqual([3, 1]);
    expect(l2.dataSync()[0]).toBeCloseTo((2 / 16) * (1.25 * 3 + 0.75 * 1), 7);
    tracker.reset();
    expect(tracker.steps).toBe(0);
  });
});

describe('attachAuxLoss (MoEAuxLossAutoScaler)', () => {
  it('is the identity in forward and injects d(aux) = scale in backward', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const w = tf.tensor1d([0.5, -1, 2]);
    const f = (xx: tf.Tensor, ww: tf.Tensor) => {
      const act = tf.mul(xx, 2);
      const aux = tf.sum(tf.square(ww)); // d aux / d w = 2w
      return tf.sum(attachAuxLoss(act, aux));
    };
    const out = f(x, w);
    expect(out.dataSync()[0]).toBe(12);
    const [gx, gw] = tf.grads(f)([x, w]);
    expect(Array.from(gx!.dataSync())).toEqual([2, 2, 2]);
    expect(Array.from(gw!.dataSync())).toEqual([1, -2, 4]);
    setAuxLossScale(0.25);
    const [, gw2] = tf.grads(f)([x, w]);
    expect(Array.from(gw2!.dataSync())).toEqual([0.25, -0.5, 1]);
    setAuxLossScale(1);
  });
});

describe('MoEMetricsTracker', () => {
  it('accumulates per layer, scales and averages over recording layers, then clears', () => {
    const t = new MoEMetricsTracker();
    t.record('load_balancing_loss', 1.5, 1, 4);
    t.record('load_balancing_loss', 0.5, 1, 4);
    t.record('load_balancing_loss', tf.scalar(3), 3, 4);
    expect(t.get('load_balancing_loss')).toEqual([2, 0, 3, 0]);
    const r = t.report(0.5);
    expect(r['load_balancing_loss']!.perLayer).toEqual([1, 0, 1.5, 0]);
    expect(r['load_balancing_loss']!.mean).toBeCloseTo(1.25, 10);
    expect(t.names()).toEqual([]);
    expect(() => t.record('x', 1, 5, 4)).toThrow(/layerNumber/);
  });
});
