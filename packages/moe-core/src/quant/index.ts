// The minifloat codec (E4M3, E5M2, E2M1, E8M0) is @kiln/gpu-kernels': castToMiniFloat, decodeMiniFloat, ...
export { fp8ScaleFromAmax, qdqBlocks, qdqTensorwise, qdqBlockwise, qdqMxfp8, fp8Max, DelayedScaling } from './fp8.js';
export type { Matrix, QdqResult } from './fp8.js';
export { qdqNvfp4, applyRht16, rhtMatrix16, RHT_SIGNS } from './nvfp4.js';
export type { Nvfp4Options, Nvfp4Result } from './nvfp4.js';
export { createQuantRecipe, qdqOperand, fakeQuantize, quantizedMatMul, quantizedGemms, DelayedScalingTable } from './qdq.js';
export type { QuantRecipe, OperandRole, QuantizedGemms } from './qdq.js';
