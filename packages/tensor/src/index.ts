export { tf } from './tf.js';
export type { Tensor, Rank, DataType } from './tf.js';
export {
  initBackend,
  describeBackendChoice,
  knownBackends,
  backendCandidates,
  BackendUnavailableError,
} from './backends.js';
export type { BackendCandidate, BackendChoice, InitBackendOptions } from './backends.js';
export { NativeBackend, NATIVE_BACKEND_NAME, registerNativeBackend, nativeKernelNames } from './native-backend.js';
export type { NativeBackendInfo, NativeOutputPoolStats } from './native-backend.js';
export type { RecyclerStats } from './native-recycler.js';
export { probeWebGpu } from './webgpu.js';
export type { WebGpuAdapterSummary } from './webgpu.js';
export { adam, FusedAdamOptimizer, hasFusedAdam } from './adam.js';
export type { AdamOptions } from './adam.js';
export { defineOp, listOps, getOp } from './ops.js';
export { vjp } from './vjp.js';
export type { Op, OpSpec, OpKernel, OpAttrs, OpGradientArgs } from './ops.js';
export {
  ConfigError,
  isConfigError,
  checkValue,
  checkConfigObject,
  coerceFlag,
  describeType,
  fieldDefaults,
  flagName,
  resolveConfig,
} from './config-fields.js';
export type { FieldSpec, FieldTable, Config, ConfigValue, NumberField, StringField, BooleanField, EnumField } from './config-fields.js';
export { createRng } from './rng.js';
export type { Rng, RngState } from './rng.js';
export {
  saveSafetensors,
  loadSafetensors,
  encodeSafetensors,
  decodeSafetensors,
  tensorToEntry,
  entryToTensor,
  writeFileAtomic,
  SafetensorsError,
} from './safetensors.js';
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsFile, SafetensorsInput, SafetensorsData } from './safetensors.js';
export { float32ToFloat16Bits, float16BitsToFloat32, float32ToBfloat16Bits, bfloat16BitsToFloat32 } from './half.js';
export { memorySnapshot, measurePeakBytes, timeIt } from './probes.js';
export type { MemorySnapshot, Timing } from './probes.js';
export { countReads, describeReads } from './read-counter.js';
export { hostArray, isHostMemoryBackend } from './host-array.js';
export type { ReadCount, ReadRecord } from './read-counter.js';
export { TEST_BACKEND_ENV, testBackendName, initTestBackend, testBackendAvailable, suitesForTestBackend } from './test-backend.js';
export { runWgsl } from './wgsl.js';
export type { WgslProgram } from './wgsl.js';
