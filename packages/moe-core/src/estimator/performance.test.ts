import { describe, expect, it } from 'vitest';
import { DEEPSEEK_V3, type MoEModelSpec, QWEN3_235B_A22B } from './estimator.js';
import { GPUS, type GpuSpec, gpuByName, peakFlops } from './gpus.js';
import { megatronFlopsPerToken } from './model-flops.js';
import { DEFAULT_EFFICIENCY, type TrainingRun, estimatePerformance, linearPassBytes, pipelineMakespan, remoteRanksPerToken } from './performance.js';

describe("Megatron's model FLOPs", () => {
  it("reproduce the FLOPs per token behind Megatron-Bridge's published tokens/s and TFLOPS (DeepSeek-V3 with MTP, Qwen3-235B)", () => {
    // published pairs: (TFLOP/s/GPU, tokens/s/GPU) of the same runs; their ratio is the FLOPs per token
    expect(megatronFlopsPerToken(DEEPSEEK_V3, 4096).total / (1219e12 / 4691)).toBeCloseTo(1, 2);
    expect(megatronFlopsPerToken(DEEPSEEK_V3, 4096).total / (1046e12 / 4021)).toBeCloseTo(1, 2);
    expect(megatronFlopsPerToken(QWEN3_235B_A22B, 4096).total / (974e12 / 6583)).toBeCloseTo(1, 2);
  });

  it('count GEMMs three times at two FLOPs per multiply-add, causal attention at half the square', () => {
    const f = megatronFlopsPerToken(QWEN3_235B_A22B, 4096);
    expect(f.routedExperts).toBe(6 * 4096 * 1536 * 8 * 3 * 94);
    expect(f.attentionProjections).toBe(6 * (4096 * (8192 + 2 * 512) + 8192 * 4096) * 94);
    expect(f.attentionCore).toBe(6 * 8192 * 4096 * 94);
    expect(f.logits).toBe(6 * 4096 * 151936);
    // the core term grows linearly with the sequence, the rest not at all
    const g = megatronFlopsPerToken(QWEN3_235B_A22B, 8192);
    expect(g.attentionCore).toBe(2 * f.attentionCore);
    expect(g.total - g.attentionCore).toBe(f.total - f.attentionCore);
  });
});

describe('GPU table', () => {
  it('holds dense peaks (half the datasheets’ sparse figures) and refuses what a GPU lacks', () => {
    expect(peakFlops(GPUS.h100, 'fp8')).toBe(2 * peakFlops(GPUS.h100, 'bf16'));
    expect(peakFlops(GPUS.gb300, 'fp4')).toBe(1.5 * peakFlops(GPUS.gb200, 'fp4'));
    expect(() => peakFlops(GPUS.h200, 'fp4')).toThrow(/H200 SXM has no FP4/);
    expect(gpuByName('GB200')).toBe(GPUS.gb200);
    expect(() => gpuByName('a100')).toThrow(/unknown GPU 'a100' \(known: h100, h200, b200, gb200, gb300\)/);
    for (const g of Object.values(GPUS)) expect(g.nvlinkDomain === 8 || g.nvlinkDomain === 72).toBe(true);
  });
});

describe('pieces of the time model', () => {
  it('pipeline makespan: whole layers per stage, the output layer on the last stage', () => {
    expect(pipelineMakespan(10, 1, 1, 3)).toBe(13);
    // 8 layers on 2 stages, head worth 2 layers: last stage takes 3 layers (5), first 5 (5)
    expect(pipelineMakespan(8, 2, 1, 2)).toBe(5);
    // 61 layers on 4 stages, no head: the busiest holds ⌈61/4⌉ = 16
    expect(pipelineMakespan(61, 4, 1, 0)).toBe(16);
    // a head heavier than a stage's share sits alone on the last stage
    expect(pipelineMakespan(6, 3, 1, 10)).toBe(10);
  });

  it('EP traffic: remote ranks a token is sent to, deduplicated per rank', () => {
    expect(remoteRanksPerToken(64, 4, 1)).toBe(0);
    // one expert per rank: each of the k experts is elsewhere with probability (ep − 1)/ep
    expect(remoteRanksPerToken(8, 2, 8)).toBeCloseTo((7 * 2) / 8, 12);
    // DeepSeek-V3 over 64 ranks: fewer than k = 8 (two experts of a token often share a rank)
    const r = remoteRanksPerToken(256, 8, 64);
    expect(r).toBeGreaterThan(7);
    expect(r).toBeLessThan(8 * (63 / 64));
  });

  it('linear layers: weights read twice plus the FP32 main gradient, rows three times plus once in BF16', () => {
    expect(linearPassBytes([[4, 8]], 0, 1, 1)).toBe(32 * 10);
    expect(linearPassBytes([[4, 8]], 10, 2, 2)).toBe(16 * 12 + 10 * 6 * 8);
    expect(linearPassBytes([[4, 8]], 0, 1, 1, 3)).toBe(3 * 320);
  });
});

/** One GPU, no parallelism: the step is the sum of the compute terms. */
const single = (spec: MoEModelSpec, gpu: GpuSpec, extra: Partial<TrainingRun> = {}): TrainingRun => ({
  spec,
  gpu,
  layout: { tp: 1, pp: 1, ep: 1, dp: 1 },
  precision: 'bf16',
  seqLength: 4096,
  microBatchSize: 1,
  globalBatchSize: 8,
  ...extra,
});

const small: MoEModelSpec = {
  ...QWEN3_235B_A22B,
  name: 'small',
  numLayers: 8,
  numExperts: 16,
  topk: 2,
  attention: { kind: 'gqa', numHeads: 32, numKvHeads: 4, headDim: 128 },
};

describe('estimatePerformance', () => {
  it('on one GPU is the roofline sum; throughput and TFLOPS follow from the step time', () => {
    const e = estimatePerformance(single(small, GPUS.h100));
    const b = e.breakdown;
    expect(e.stepSeconds).toBeCloseTo(b.denseGemm + b.expertGemm + b.logits + b.attention + b.memoryBound + b.optimizer, 9);
    for (const k of ['expertParallel', 'tensorParallel', 'contextParallel', 'pipelineParallel', 'dataParallel', 'bubble'] as const) expect(b[k]).toBe(0);
    expect(e.tokensPerSecond).toBeCloseTo((8 * 4096) / e.stepSeconds, 6);
    expect(e.tflopsPerGpu).toBeCloseTo((e.tokensPerSecond * megatronFlopsPerToken(small, 4096).total) / 1e12, 6);
    expect(e.mfu).toBeCloseTo((e.tflopsPerGpu * 1e12) / GPUS.h100.bf16, 9);
    // compute-bound GEMMs: the dense GEMM term is FLOPs over 70 % of the peak
    const f = megatronFlopsPerToken(small, 4096);
    expect(b.denseGemm).toBeCloseTo((8 * 4096 * (f.attentionProjections + f.sharedExperts + f.denseMlp)) / (GPUS.h100.bf16 * DEFAULT_EFFICIENCY.gemm), 9);
    // FP8 halves the GEMM terms, not attention (BF16) nor the output layer
    const fp8 = estimatePerformance(single(small, GPUS.h100, { precision: 'fp8' })).breakdown;
    expect(fp8.denseGemm).toBeCloseTo(b.denseGemm / 2, 9);
    expect(fp8.attention).toBe(b.attention);
    expect(fp8.logits).toBe(b.logits);
  });

  it('experts with few rows each are bound by loading their weights', () => {
    // 256 experts and one short sequence: ~16 rows per expert, far below the FLOP/byte balance
    const sparse: MoEModelSpec = { ...small, numExperts: 256, topk: 8 };
    const e = estimatePerformance(single(sparse, GPUS.gb200, { seqLength: 512, globalBatchSize: 1, precision: 'fp8' }));
    const flopBound = (512 * megatronFlopsPerToken(sparse, 512).routedExperts) / (GPUS.gb200.fp8 * DEFAULT_EFFICIENCY.groupedGemm);
    expect(e.breakdown.expertGemm).toBeGreaterThan(5 * flopBound);
  });

  it('EP all-to-all goes over NVLink inside a domain and the network beyond; overlap hides it behind compute', () => {
    const run = (ep: number, overlap = false) =>
      estimatePerformance({ ...single(small, GPUS.h100), layout: { tp: 1, pp: 1, ep, dp: 16 }, globalBatchSize: 64, overlapExpertComm: overlap });
    const inside = run(8);
    const across = run(16);
    expect(inside.comm.expertParallel).toBeGreaterThan(0);
    // twice the ranks, much slower links (50 vs 450 GB/s): far more than twice the time
    expect(across.comm.expertParallel).toBeGreaterThan(4 * inside.comm.expertParallel);
    expect(run(16, true).breakdown.expertParallel).toBeLessThan(across.breakdown.expertParallel);
  });

  it('pipeline bubble (pp − 1)/(vp·m) shrinks with interleaving and more micro-batches', () => {
    const run = (vp: number, gbs: number) => estimatePerformance({ ...single(small, GPUS.h100), layout: { tp: 1, pp: 4, vp, ep: 1, dp: 1 }, globalBatchSize: gbs });
    const a = run(1, 8);
    const b = run(2, 8);
    const c = run(1, 32);
    expect(b.breakdown.bubble).toBeLessThan(a.breakdown.bubble);
    expect(c.breakdown.bubble / c.stepSeconds).toBeLessThan(a.breakdown.bubble / a.stepSeconds);
    expect(a.microBatches).toBe(8);
  });

  it('refuses layouts that do not fit the model or the batch, naming the field', () => {
    const base = single(small, GPUS.h100);
    expect(() => estimatePerformance({ ...base, layout: { tp: 1, pp: 1, ep: 3, dp: 3 } })).toThrow(/numExperts \(16\) must be divisible by ep \(3\)/);
    expect(() => estimatePerformance({ ...base, layout: { tp: 1, pp: 1, ep: 1, dp: 3 } })).toThrow(/globalBatchSize \(8\) must be divisible by microBatchSize·dp = 3/);
    expect(() => estimatePerformance({ ...base, layout: { tp: 1, pp: 16, ep: 1, dp: 1 } })).toThrow(/pp·vp = 16 pipeline stages exceed the 8 layers/);
    expect(() => estimatePerformance({ ...base, precision: 'fp4' })).toThrow(/no FP4/);
    expect(() => estimatePerformance({ ...base, layout: { tp: 0, pp: 1, ep: 1, dp: 1 } })).toThrow(/layout.tp must be a positive integer/);
  });
});
