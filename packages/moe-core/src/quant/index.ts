export {
  E4M3,
  E5M2,
  E2M1,
  FORMATS,
  formatOf,
  decodeMinifloat,
  encodeMinifloat,
  castToMinifloat,
  castArray,
  enumerateMinifloat,
  decodeE8M0,
  encodeE8M0Ceil,
  exactLog2Floor,
} from './minifloat.js';
export type { MinifloatName, MinifloatFormat, CastOptions } from './minifloat.js';
export { fp8ScaleFromAmax, qdqBlocks, qdqTensorwise, qdqBlockwise, qdqMxfp8, fp8Max, DelayedScaling } from './fp8.js';
export type { Matrix, QdqResult } from './fp8.js';
export { qdqNvfp4, applyRht16, rhtMatrix16, RHT_SIGNS } from './nvfp4.js';
export type { Nvfp4Options, Nvfp4Result } from './nvfp4.js';
export { createQuantRecipe, qdqOperand, fakeQuantize, quantizedMatMul, quantizedGemms, DelayedScalingTable } from './qdq.js';
export type { QuantRecipe, OperandRole, QuantizedGemms } from './qdq.js';
