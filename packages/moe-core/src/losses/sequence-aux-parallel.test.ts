/**
 * The sequence-level aux loss under context/tensor parallelism. Each of R ranks holds a slice
 * of every sequence; the per-expert counts are all-reduced over the R ranks and the token
 * total is seqLength · R (`reduceGroupSize`). The loss is linear in the probability sums, so
 * the R per-rank losses must add up to the loss of the unsplit batch on one rank. Ignoring
 * `reduceGroupSize` would scale every rank's loss by R².
 */
import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { sequenceAuxLoss } from './load-balancing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Softmax scores and a top-k map for [tokens, E] logits drawn from a fixed LCG. */
function routing(tokens: number, E: number, topk: number, seed: number): { scores: number[][]; map: number[][] } {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const scores: number[][] = [];
  const map: number[][] = [];
  for (let t = 0; t < tokens; t++) {
    const logits = Array.from({ length: E }, () => 3 * rand());
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    scores.push(e.map((v) => v / z));
    const top = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topk);
    map.push(logits.map((_, i) => (top.includes(i) ? 1 : 0)));
  }
  return { scores, map };
}

/**
 * Megatron's seq_aux_loss written out per sequence, in float64:
 * mean over b of coeff · E / (k · S²) · Σ_i (Σ_s p[s, b, i]) · count[b, i].
 */
function referenceSeqAux(scores: number[][], map: number[][], S: number, B: number, topk: number, coeff: number): number {
  const E = scores[0]!.length;
  let total = 0;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < E; i++) {
      let p = 0;
      let c = 0;
      for (let s = 0; s < S; s++) {
        p += scores[s * B + b]![i]!;
        c += map[s * B + b]![i]!;
      }
      total += p * c;
    }
  }
  return ((coeff * E) / (topk * S * S)) * (total / B);
}

describe('sequenceAuxLoss under context/tensor parallelism', () => {
  const [S, B, E, topk, coeff] = [8, 3, 4, 2, 0.01];
  const { scores, map } = routing(S * B, E, topk, 7);

  it('matches Megatron’s formula on one rank', () => {
    const loss = sequenceAuxLoss(tf.tensor2d(scores), tf.tensor2d(map), S, B, topk, E, coeff).dataSync()[0]!;
    expect(loss).toBeCloseTo(referenceSeqAux(scores, map, S, B, topk, coeff), 7);
  });

  for (const R of [2, 4]) {
    it(`R = ${R} sequence shards with all-reduced counts add up to the unsplit loss`, () => {
      const full = referenceSeqAux(scores, map, S, B, topk, coeff);
      const local = S / R;
      // 'sb' order: token = s·B + b, so shard r holds rows [r·local·B, (r+1)·local·B).
      const shard = (rows: number[][], r: number) => rows.slice(r * local * B, (r + 1) * local * B);
      const counts = new Float64Array(B * E);
      for (let t = 0; t < S * B; t++) for (let i = 0; i < E; i++) counts[(t % B) * E + i]! += map[t]![i]!;
      const allReduce = (mine: Float32Array) => {
        expect(mine.length).toBe(B * E); // the counts per (sequence, expert)
        return Float32Array.from(counts);
      };
      let sum = 0;
      for (let r = 0; r < R; r++) {
        const loss = sequenceAuxLoss(tf.tensor2d(shard(scores, r)), tf.tensor2d(shard(map, r)), local, B, topk, E, coeff, {
          reduceGroupSize: R,
          allReduce,
        });
        sum += loss.dataSync()[0]!;
      }
      expect(sum).toBeCloseTo(full, 7);
      expect(Math.abs(sum - full) / full).toBeLessThan(1e-5);
    });
  }

  it('R identical tensor-parallel ranks each carry 1/R of the loss', () => {
    const single = sequenceAuxLoss(tf.tensor2d(scores), tf.tensor2d(map), S, B, topk, E, coeff).dataSync()[0]!;
    const R = 3;
    const loss = sequenceAuxLoss(tf.tensor2d(scores), tf.tensor2d(map), S, B, topk, E, coeff, {
      reduceGroupSize: R,
      allReduce: (c) => c.map((v) => v * R),
    }).dataSync()[0]!;
    expect(loss * R).toBeCloseTo(single, 7);
  });
});
