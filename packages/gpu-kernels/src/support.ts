/** Which backends run a dedicated kernel for each op (others run the reference). */
import { getOp } from '@kiln/tensor';

export interface KernelSupportRow {
  op: string;
  backends: Record<string, boolean>;
}

const PUBLIC_OPS = [
  'selectiveScan',
  'selectiveScanBackward',
  'groupedMatMul',
  'moeGatherRows',
  'moeScatterRows',
  'swiglu',
  'swigluGrad',
  'topkRouter',
  'castFp8',
  'selectiveScanChannelsLast',
  'selectiveScanChannelsLastBackward',
  'causalConv1d',
  'causalConv1dBackward',
  'silu',
  'siluBackward',
  'siluGate',
  'siluGateBackward',
  'layerNorm',
  'layerNormBackward',
  'sliceColumns',
  'sliceColumnsBackward',
  'permuteRows',
  'segmentPool',
  'segmentBroadcast',
  'emaUpdate',
] as const;

export function kernelSupport(backends: readonly string[] = ['cpu', 'kiln-native', 'webgpu']): KernelSupportRow[] {
  return PUBLIC_OPS.map((op) => {
    const o = getOp(op);
    return { op, backends: Object.fromEntries(backends.map((b) => [b, Boolean(o?.hasKernel(b))])) };
  });
}
