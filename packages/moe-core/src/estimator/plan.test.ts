import { describe, expect, it } from 'vitest';
import { DEEPSEEK_V3, QWEN3_235B_A22B, memoryPerGpu } from './estimator.js';
import { GPUS } from './gpus.js';
import { estimatePerformance } from './performance.js';
import { inflightMicroBatches, planLayouts } from './plan.js';

describe('planLayouts', () => {
  it('lists layouts that fit the GPU, fastest first, each consistent with the estimator', () => {
    const plans = planLayouts(QWEN3_235B_A22B, { gpus: 64, gpu: GPUS.gb200, precision: 'fp8', seqLength: 4096, globalBatchSize: 1024, top: 8 });
    expect(plans.length).toBe(8);
    for (const [i, p] of plans.entries()) {
      const l = p.layout;
      expect(l.tp * l.cp * l.dp * l.pp).toBe(64);
      expect(QWEN3_235B_A22B.numExperts % l.ep).toBe(0);
      expect(1024 % (p.microBatchSize * l.dp)).toBe(0);
      expect(p.memory.totalBytes).toBeLessThanOrEqual(GPUS.gb200.hbmBytes * 0.9);
      if (i > 0) expect(p.performance.tokensPerSecond).toBeLessThanOrEqual(plans[i - 1]!.performance.tokensPerSecond);
      const again = estimatePerformance({
        spec: QWEN3_235B_A22B,
        gpu: GPUS.gb200,
        layout: l,
        precision: 'fp8',
        seqLength: 4096,
        microBatchSize: p.microBatchSize,
        globalBatchSize: 1024,
        recompute: p.recompute,
      });
      expect(again.stepSeconds).toBe(p.performance.stepSeconds);
    }
  });

  it('recomputes only when nothing else fits, and finds nothing where the model cannot fit', () => {
    // DeepSeek-V3 on 8 H100: 671 B parameters cannot fit 8 × 80 GB
    expect(planLayouts(DEEPSEEK_V3, { gpus: 8, gpu: GPUS.h100, precision: 'bf16', seqLength: 4096, globalBatchSize: 64 })).toEqual([]);
    // on 80 GB H100s DeepSeek-V3 needs recomputation: each plan that uses it would not fit without
    const tight = planLayouts(DEEPSEEK_V3, { gpus: 1024, gpu: GPUS.h100, precision: 'fp8', seqLength: 4096, globalBatchSize: 8192, top: 3 });
    expect(tight.length).toBe(3);
    const recomputing = tight.filter((p) => p.recompute.length > 0);
    expect(recomputing.length).toBeGreaterThan(0);
    for (const p of recomputing) {
      const l = p.layout;
      const without = memoryPerGpu(DEEPSEEK_V3, l, { microBatchSize: p.microBatchSize, seqLength: 4096, inflightMicroBatches: inflightMicroBatches(l.pp, l.vp, p.performance.microBatches) });
      expect(without.totalBytes).toBeGreaterThan(GPUS.h100.hbmBytes * 0.9);
    }
    expect(() => planLayouts(DEEPSEEK_V3, { gpus: 0, gpu: GPUS.h100, precision: 'bf16', seqLength: 4096, globalBatchSize: 64 })).toThrow(/gpus must be a positive integer/);
  });
});
