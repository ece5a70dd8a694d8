/**
 * @kiln/gpu-kernels — the custom ops Kiln's models need, declared once with @kiln/tensor's
 * `defineOp`: a reference composition of tf ops that runs (and differentiates) on every
 * backend, plus kernels for `cpu`, `kiln-native` (C++ through @kiln/native when its addon
 * loads) and `webgpu` (WGSL). CUDA sources live in native/cuda.
 *
 * Importing this module registers the ops and their kernels (a side effect).
 */
export { selectiveScan, selectiveScanOp, selectiveScanBackward, scanReference, DEFAULT_SCAN_CHUNK } from './scan/selective-scan.js';
export type { SelectiveScanArgs } from './scan/selective-scan.js';
export { groupedMatMul, groupedMatMulOp } from './moe/grouped-matmul.js';
export { moePermute, moeUnpermute, planPermutation, gatherRowsOp, scatterRowsOp } from './moe/permute.js';
export type { MoePermuteResult, PermuteOptions, PermutePlan } from './moe/permute.js';
export { swiglu, swigluBackward, swigluOp, swigluGradOp } from './moe/swiglu.js';
export { topkRouter, topkRouterOp, groupLimitedTopkRow, SCORE_FUNCTIONS } from './moe/topk-router.js';
export type { ScoreFunction, TopkRouterOptions, TopkRouting } from './moe/topk-router.js';
export { topkIndices, TOPK_TIE_ORDERS } from './moe/topk-select.js';
export type { TopkTieOrder } from './moe/topk-select.js';
export { castFp8, castFp8Op } from './quant/fp8.js';
export type { CastFp8Options } from './quant/fp8.js';
export {
  E4M3,
  E5M2,
  E2M1,
  FP8_FORMATS,
  MINIFLOAT_FORMATS,
  formatOf,
  castToMiniFloat,
  castArray,
  roundToFormat,
  decodeMiniFloat,
  encodeMiniFloat,
  enumerateMiniFloat,
  decodeE8M0,
  encodeE8M0Ceil,
  floorLog2,
  hashUniform,
} from './quant/minifloat.js';
export type { Fp8Format, MiniFloatFormat, MiniFloatName, CastOptions } from './quant/minifloat.js';
export { causalConv1d, causalConv1dOp, causalConv1dBackwardOp } from './mamba/causal-conv1d.js';
export type { CausalConvAttrs, ConvActivation } from './mamba/causal-conv1d.js';
export { selectiveScanChannelsLast, selectiveScanChannelsLastOp, selectiveScanChannelsLastBackwardOp } from './mamba/scan-channels-last.js';
export type { ChannelsLastScanArgs, ChannelsLastScanAttrs } from './mamba/scan-channels-last.js';
export { silu, siluOp, siluBackwardOp, siluGate, siluGateOp, siluGateBackwardOp } from './mamba/silu.js';
export { layerNorm, layerNormOp, layerNormBackwardOp } from './norm/layer-norm.js';
export type { LayerNormAttrs } from './norm/layer-norm.js';
export { emaUpdate, emaUpdateOp } from './optim/ema.js';
export type { EmaAttrs } from './optim/ema.js';
export { sliceColumns, sliceColumnsOp, sliceColumnsBackwardOp } from './layout/slice-columns.js';
export type { SliceColumnsAttrs } from './layout/slice-columns.js';
export { permuteRows, permuteRowsOp, segmentPool, segmentPoolOp, segmentBroadcast, segmentBroadcastOp } from './pointcloud/rows.js';
export type { Segmentation, SegmentAttrs } from './pointcloud/rows.js';
export { kernelSupport } from './support.js';
export type { KernelSupportRow } from './support.js';
