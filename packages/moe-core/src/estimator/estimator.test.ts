import { describe, expect, it } from 'vitest';
import { validateMoEConfig } from '../config.js';
import { DEEPSEEK_V3, QWEN3_235B_A22B, countParams, flopsPerToken, memoryPerGpu, specFromMoEConfig } from './estimator.js';

const B = 1e9;

describe('parameter counts against the published sizes', () => {
  it('DeepSeek-V3: 671 B total within 0.5 %, 37 B active within 3 %', () => {
    const p = countParams(DEEPSEEK_V3);
    expect(Math.abs(p.total / B - 671) / 671).toBeLessThan(0.005);
    expect(Math.abs(p.active / B - 37) / 37).toBeLessThan(0.03);
    // exact sums of the architecture (embedding 129280·7168, 256 experts × 58 MoE layers)
    expect(p.embedding).toBe(129280 * 7168);
    expect(p.routedExperts).toBe(58 * 256 * 3 * 7168 * 2048);
    // 685 B published with the MTP module (its checkpoint also stores embedding and head again)
    expect(Math.abs((p.total + p.mtp + 2 * p.embedding) / B - 685) / 685).toBeLessThan(0.005);
    expect(p.attention).toBe(61 * (7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 + 128 * 128 * 7168));
  });

  it('Qwen3-235B-A22B: 235 B total within 0.5 %, 22 B active within 3 %', () => {
    const p = countParams(QWEN3_235B_A22B);
    expect(Math.abs(p.total / B - 235) / 235).toBeLessThan(0.005);
    expect(Math.abs(p.active / B - 22) / 22).toBeLessThan(0.03);
    expect(p.attention).toBe(94 * (4096 * 8192 * 2 + 2 * 4096 * 512 + 256));
  });
});

describe('FLOPs per token', () => {
  it('≈ 6 × active matmul parameters plus attention for training', () => {
    const f = flopsPerToken(DEEPSEEK_V3, 4096);
    const p = countParams(DEEPSEEK_V3);
    expect(f.forwardDense).toBeCloseTo(2 * (p.active - p.embedding - p.norms - 58 * 256), -3);
    // attention: 61 layers · 2 · 128 heads · (192 + 128) · 4096 / 2
    expect(f.forwardAttention).toBe(61 * 2 * 128 * 320 * 4096 * 0.5);
    expect(f.training).toBe(3 * f.forward);
    // DeepSeek-V3 reports ≈ 250 GFLOP per training token at 4K context for 37 B active: 6·37e9 = 222e9 + attention
    expect(f.training / 1e9).toBeGreaterThan(220);
    expect(f.training / 1e9).toBeLessThan(300);
    const q = flopsPerToken(QWEN3_235B_A22B, 4096, { causal: false });
    expect(q.forwardAttention).toBe(94 * 2 * 64 * 256 * 4096);
  });
});

describe('memory per GPU', () => {
  const opts = { microBatchSize: 1, seqLength: 4096 };
  it('splits experts over etp·ep·pp and the rest over tp·pp; sums to the model over one replica', () => {
    const layout = { tp: 2, pp: 16, ep: 64, etp: 1, dp: 64 };
    const m = memoryPerGpu(DEEPSEEK_V3, { ...layout, pp: 1, dp: 1024 }, opts);
    expect(m.worldSize).toBe(2048);
    expect(m.edp).toBe(2048 / 64);
    const p = countParams(DEEPSEEK_V3);
    expect(m.expertParamsPerGpu * 64).toBeCloseTo(p.routedExperts, -2);
    expect(m.nonExpertParamsPerGpu * 2).toBeCloseTo(p.nonExpert, -2);
    expect(m.weightsBytes).toBe(m.paramsPerGpu * 2);
    // 61 layers on 16 stages: the busiest holds 4 of them
    const staged = memoryPerGpu(DEEPSEEK_V3, layout, opts);
    expect(staged.expertParamsPerGpu * 64).toBeCloseTo((p.routedExperts * 4) / 58, -2);
    expect(() => memoryPerGpu(DEEPSEEK_V3, { ...layout, pp: 64 }, opts)).toThrow(/pp \(64\) exceeds numLayers \(61\)/);
    expect(() => memoryPerGpu(DEEPSEEK_V3, { tp: 1, pp: 1, ep: 3, dp: 3 }, opts)).toThrow(/ep \(3\)/);
  });

  it('the distributed optimizer and more expert parallelism reduce memory; recompute reduces activations', () => {
    const base = memoryPerGpu(QWEN3_235B_A22B, { tp: 4, pp: 2, ep: 8, dp: 16 }, opts);
    const noDist = memoryPerGpu(QWEN3_235B_A22B, { tp: 4, pp: 2, ep: 8, dp: 16 }, { ...opts, distributedOptimizer: false });
    expect(noDist.optimizerBytes).toBeGreaterThan(base.optimizerBytes * 8);
    const moreEp = memoryPerGpu(QWEN3_235B_A22B, { tp: 4, pp: 2, ep: 32, dp: 16 }, opts);
    expect(moreEp.expertParamsPerGpu).toBeCloseTo(base.expertParamsPerGpu / 4, -2);
    const rc = memoryPerGpu(QWEN3_235B_A22B, { tp: 4, pp: 2, ep: 8, dp: 16 }, { ...opts, recomputeExperts: true });
    expect(rc.activationsBytes).toBeLessThan(base.activationsBytes);
    // ~22 GB of bf16 weights per GPU at tp4·pp2·ep8 for Qwen3-235B
    expect(base.weightsBytes / 1e9).toBeGreaterThan(5);
    expect(base.weightsBytes / 1e9).toBeLessThan(40);
  });

  it('builds a spec from an MoEConfig', () => {
    const c = validateMoEConfig({ numExperts: 8, topk: 2, hiddenSize: 512, ffnHiddenSize: 1024, numLayers: 4 });
    const s = specFromMoEConfig(c, { vocabSize: 1000, attention: { kind: 'gqa', numHeads: 8, numKvHeads: 8, headDim: 64 } });
    const p = countParams(s);
    expect(p.routedExperts).toBe(4 * 8 * 3 * 512 * 1024);
    expect(p.active).toBe(p.total - p.routedExperts + 4 * 2 * 3 * 512 * 1024);
  });
});
