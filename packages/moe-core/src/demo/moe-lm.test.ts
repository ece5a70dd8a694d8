import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { sequenceAuxLoss } from '../losses/load-balancing.js';
import { computeRoutingScoresForAuxLoss } from '../router/routing.js';
import { MoeLm } from './moe-lm.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('MoeLm', () => {
  it('the sequence aux loss groups the batch-major rows by sequence (each sequence balanced on its own)', () => {
    const [B, S, E, topk, coeff] = [3, 8, 4, 2, 1e-2];
    const model = new MoeLm(
      { layers: 1, dModel: 16, heads: 2, context: S, vocab: 256, moe: { numExperts: E, topk, ffnHiddenSize: 16, routerLoadBalancingType: 'seq_aux_loss', auxLossCoeff: coeff } },
      createRng(3),
    );
    const block = model.blocks[0]!;
    // a decisive router, so that how the tokens are grouped shows in the loss
    tf.tidy(() => block.moeWeights.router.assign(createRng(5).normal([E, 16], 0, 2)));
    // the MoE layer's input, to recompute the loss sequence by sequence
    let input: tf.Tensor2D | null = null;
    const forward = block.moe.forward.bind(block.moe);
    block.moe.forward = (h, o) => {
      input = tf.keep(tf.clone(h));
      return forward(h, o);
    };
    const rng = createRng(4);
    const tokens = tf.tensor2d(Int32Array.from({ length: B * S }, () => rng.int(0, 256)), [B, S], 'int32');
    tf.tidy(() => model.logits(tokens));
    const logged = block.moe.stats.losses.seq_aux_loss!;
    const router = block.moe.router;
    const { bySequence, sequenceMajor } = tf.tidy(() => {
      const logits = router.gating(input!);
      const perSequence = Array.from({ length: B }, (_, b) => {
        const { scores, routingMap } = computeRoutingScoresForAuxLoss(tf.slice(logits, [b * S, 0], [S, E]) as tf.Tensor2D, topk, 'softmax');
        return sequenceAuxLoss(scores, routingMap, S, 1, topk, E, coeff).dataSync()[0]!;
      });
      const all = computeRoutingScoresForAuxLoss(logits, topk, 'softmax');
      return {
        bySequence: perSequence.reduce((a, v) => a + v, 0) / B,
        // the same rows read as Megatron's [seq, batch] order: a different grouping
        sequenceMajor: sequenceAuxLoss(all.scores, all.routingMap, S, B, topk, E, coeff, { order: 'sb' }).dataSync()[0]!,
      };
    });
    expect(Math.abs(logged - bySequence)).toBeLessThan(1e-7);
    expect(Math.abs(sequenceMajor - bySequence)).toBeGreaterThan(1e-4);
    tf.dispose([tokens, input!]);
  });
});
