/**
 * Published Megatron-Core MoE training throughputs and the layouts they were measured with,
 * to check the performance model against. The figures are those of the report "Scalable
 * Training of Mixture-of-Experts Models with Megatron Core" (NVIDIA, arXiv:2603.07685,
 * March 2026): DeepSeek-V3 1,233 / 1,048 TFLOPS/GPU on GB300 / GB200, Qwen3-235B 974 / 919.
 * The layouts are NVIDIA's Megatron-Bridge performance recipes of that release (26.02;
 * scripts/performance/configs/{deepseek,qwen}/*_workload_base_configs.py, and the
 * "Performance Summary" tables of docs/performance-summary.md, which list the same runs at
 * 1,199–1,219 / 1,028–1,046 and 974 / 806–819 TFLOPS/GPU): 256 GPUs, MXFP8, sequence length
 * 4,096, experts force-balanced, HybridEP dispatcher, no 1F1B all-to-all overlap.
 */
import { DEEPSEEK_V3, type MoEModelSpec, QWEN3_235B_A22B } from './estimator.js';
import { GPUS, type GpuName } from './gpus.js';
import { DEFAULT_EFFICIENCY, type Efficiency, type TrainingRun, estimatePerformance } from './performance.js';

export interface PublishedRun {
  label: string;
  gpuName: GpuName;
  run: TrainingRun;
  /** Model TFLOP/s per GPU as published. */
  publishedTflops: number;
  source: string;
}

const run = (spec: MoEModelSpec, gpuName: GpuName, r: Omit<TrainingRun, 'spec' | 'gpu' | 'precision' | 'seqLength'>): TrainingRun => ({
  spec,
  gpu: GPUS[gpuName],
  precision: 'fp8',
  seqLength: 4096,
  ...r,
});

const REPORT = 'arXiv:2603.07685 (abstract); layout: Megatron-Bridge 26.02 performance recipe';

export const PUBLISHED_RUNS: PublishedRun[] = [
  {
    label: 'DeepSeek-V3 on 256 GB300',
    gpuName: 'gb300',
    run: run(DEEPSEEK_V3, 'gb300', { layout: { tp: 1, pp: 2, vp: 8, ep: 32, dp: 128 }, microBatchSize: 2, globalBatchSize: 4096, recompute: ['mla_up_proj'] }),
    publishedTflops: 1233,
    source: REPORT,
  },
  {
    label: 'DeepSeek-V3 on 256 GB200',
    gpuName: 'gb200',
    run: run(DEEPSEEK_V3, 'gb200', { layout: { tp: 1, pp: 4, vp: 4, ep: 64, dp: 64 }, microBatchSize: 1, globalBatchSize: 4096, recompute: ['mla_up_proj'] }),
    publishedTflops: 1048,
    source: REPORT,
  },
  {
    label: 'Qwen3-235B-A22B on 256 GB300',
    gpuName: 'gb300',
    run: run(QWEN3_235B_A22B, 'gb300', { layout: { tp: 1, pp: 4, ep: 32, dp: 64 }, microBatchSize: 2, globalBatchSize: 8192 }),
    publishedTflops: 974,
    source: REPORT,
  },
  {
    label: 'Qwen3-235B-A22B on 256 GB200',
    gpuName: 'gb200',
    run: run(QWEN3_235B_A22B, 'gb200', { layout: { tp: 1, pp: 8, ep: 32, dp: 32 }, microBatchSize: 1, globalBatchSize: 8192 }),
    publishedTflops: 919,
    source: REPORT,
  },
];

const LATER = "Megatron-Bridge docs/performance-summary.md, 26.08 container (same models and systems, newer software)";

/**
 * NVIDIA's later measurements of the same models on the same systems (Megatron-Bridge 26.08:
 * full-iteration CUDA graphs, fused kernels, 1F1B all-to-all overlap on), at their layouts.
 * Context for the gap to the report's figures, not a target: the model is not checked
 * against them in tests.
 */
export const LATER_PUBLISHED_RUNS: PublishedRun[] = [
  {
    label: 'DeepSeek-V3 on 256 GB300 (26.08)',
    gpuName: 'gb300',
    run: run(DEEPSEEK_V3, 'gb300', { layout: { tp: 1, pp: 2, vp: 8, ep: 32, dp: 128 }, microBatchSize: 1, globalBatchSize: 4096 }),
    publishedTflops: 1635,
    source: LATER,
  },
  {
    label: 'DeepSeek-V3 on 256 GB200 (26.08)',
    gpuName: 'gb200',
    run: run(DEEPSEEK_V3, 'gb200', { layout: { tp: 1, pp: 4, vp: 4, ep: 64, dp: 64 }, microBatchSize: 1, globalBatchSize: 4096, recompute: ['mla_up_proj'] }),
    publishedTflops: 1276,
    source: LATER,
  },
  {
    label: 'Qwen3-235B-A22B on 256 GB300 (26.08)',
    gpuName: 'gb300',
    run: run(QWEN3_235B_A22B, 'gb300', { layout: { tp: 1, pp: 4, vp: 12, ep: 32, dp: 64 }, microBatchSize: 2, globalBatchSize: 8192 }),
    publishedTflops: 1306,
    source: LATER,
  },
  {
    label: 'Qwen3-235B-A22B on 256 GB200 (26.08)',
    gpuName: 'gb200',
    run: run(QWEN3_235B_A22B, 'gb200', { layout: { tp: 1, pp: 8, vp: 3, ep: 32, dp: 32 }, microBatchSize: 1, globalBatchSize: 8192 }),
    publishedTflops: 1077,
    source: LATER,
  },
];

export interface ValidationRow {
  label: string;
  layout: string;
  publishedTflops: number;
  estimatedTflops: number;
  /** (estimated − published) / published. */
  error: number;
  stepSeconds: number;
  mfu: number;
}

/** The model's estimate next to each published figure (default: the report's four). */
export function validateAgainstPublished(eff: Efficiency = DEFAULT_EFFICIENCY, runs: PublishedRun[] = PUBLISHED_RUNS): ValidationRow[] {
  return runs.map((p) => {
    const e = estimatePerformance(p.run, eff);
    const l = p.run.layout;
    return {
      label: p.label,
      layout: `tp${l.tp} pp${l.pp}${l.vp && l.vp > 1 ? ` vp${l.vp}` : ''} ep${l.ep} dp${l.dp} mbs${p.run.microBatchSize} gbs${p.run.globalBatchSize} ${p.run.precision}`,
      publishedTflops: p.publishedTflops,
      estimatedTflops: e.tflopsPerGpu,
      error: (e.tflopsPerGpu - p.publishedTflops) / p.publishedTflops,
      stepSeconds: e.stepSeconds,
      mfu: e.mfu,
    };
  });
}
