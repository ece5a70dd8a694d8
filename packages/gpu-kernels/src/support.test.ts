import { describe, expect, it } from 'vitest';
import './index.js';
import { kernelSupport } from './support.js';

describe('kernelSupport', () => {
  it('lists every op with a kernel on cpu, and on webgpu all but the point-cloud model ops (kiln-native gets the cpu kernels when it registers)', () => {
    const rows = kernelSupport();
    expect(rows.map((r) => r.op)).toEqual([
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
    ]);
    // On webgpu these run their reference compositions (tfjs's own GPU ops).
    const referenceOnWebgpu = new Set(rows.slice(rows.findIndex((r) => r.op === 'selectiveScanChannelsLast')).map((r) => r.op));
    for (const r of rows) {
      expect(r.backends.cpu, r.op).toBe(true);
      expect(r.backends.webgpu, r.op).toBe(!referenceOnWebgpu.has(r.op));
    }
  });
});
