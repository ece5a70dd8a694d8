export {
  DEEPSEEK_V3,
  QWEN3_235B_A22B,
  MODEL_PRESETS,
  attentionParams,
  mlpParams,
  countParams,
  flopsPerToken,
  memoryPerGpu,
  specFromMoEConfig,
} from './estimator.js';
export type {
  MlaAttention,
  GqaAttention,
  MoEModelSpec,
  ParamCounts,
  FlopsPerToken,
  ParallelLayout,
  MemoryOptions,
  MemoryEstimate,
} from './estimator.js';
export { GPUS, gpuByName, peakFlops } from './gpus.js';
export type { GpuName, GpuSpec, Precision } from './gpus.js';
export { megatronFlopsPerToken } from './model-flops.js';
export type { ModelFlops } from './model-flops.js';
export {
  DEFAULT_EFFICIENCY,
  estimatePerformance,
  memoryBoundBytesPerToken,
  pipelineMakespan,
  remoteRanksPerToken,
  checkLayout,
  TRAINING_RECOMPUTE,
} from './performance.js';
export type { Efficiency, PerformanceEstimate, TrainingRecompute, StepBreakdown, TrainingLayout, TrainingRun } from './performance.js';
export { LATER_PUBLISHED_RUNS, PUBLISHED_RUNS, validateAgainstPublished } from './published.js';
export type { PublishedRun, ValidationRow } from './published.js';
export { inflightMicroBatches, planLayouts } from './plan.js';
export type { Plan, PlanOptions } from './plan.js';
