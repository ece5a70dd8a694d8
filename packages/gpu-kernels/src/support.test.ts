import { describe, expect, it } from 'vitest';
import './index.js';
import { kernelSupport } from './support.js';

describe('kernelSupport', () => {
  it('lists every op with a kernel on cpu and webgpu (kiln-native gets the cpu kernels when it registers)', () => {
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
        ]);
    for (const r of rows) {
      expect(r.backends.cpu, r.op).toBe(true);
      expect(r.backends.webgpu, r.op).toBe(true);
    }
  });
});
