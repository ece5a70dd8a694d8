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
