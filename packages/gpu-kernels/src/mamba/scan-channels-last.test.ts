import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectiveScan } from '../scan/selective-scan.js';
import { type HostArray, hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { selectiveScanChannelsLast, selectiveScanChannelsLastOp } from './scan-channels-last.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function host(rows: number, L: number, dim: number, N: number, full: boolean): Record<string, HostArray> {
  const A = hostNormal([dim, N], 3, 0.5);
  A.data = A.data.map((v) => -Math.exp(v + 0.3)) as Float32Array;
  const h: Record<string, HostArray> = {
    u: hostNormal([rows, L, dim], 1),
    delta: hostNormal([rows, L, dim], 2, 0.7),
    A,
    B: hostNormal([rows, L, N], 4),
    C: hostNormal([rows, L, N], 5),
  };
  if (full) {
    h.D = hostNormal([dim], 6);
    h.deltaBias = hostNormal([dim], 7, 0.3);
  }
  return h;
}

describe('selectiveScanChannelsLast', () => {
  it('is selectiveScan on transposed operands', async () => {
    const h = host(2, 9, 3, 2, true);
    const t = (k: string) => tf.tensor(h[k]!.data, h[k]!.shape);
    const tr = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1]);
    const y = selectiveScanChannelsLast({ u: t('u'), delta: t('delta'), A: t('A'), B: t('B'), C: t('C'), D: t('D'), deltaBias: t('deltaBias'), deltaSoftplus: true });
    const want = selectiveScan({ u: tr(t('u')), delta: tr(t('delta')), A: t('A'), B: tr(t('B')), C: tr(t('C')), D: t('D'), deltaBias: t('deltaBias'), deltaSoftplus: true });
    const diff = tf.max(tf.abs(tf.sub(y, tr(want)))).dataSync()[0]!;
    expect(diff).toBeLessThan(1e-5);
  });

  // rows, L, dim, N: all ones; L < a checkpoint chunk; L across two chunk boundaries with a
  // partial channel block (20 = 16 + 4); several rows, dim past two blocks
  const shapes: Array<[number, number, number, number]> = [
    [1, 1, 1, 1],
    [2, 5, 3, 2],
    [1, 130, 20, 4],
    [3, 70, 33, 3],
  ];
  for (const backend of backends) {
    for (const [rows, L, dim, N] of shapes) {
      for (const full of [true, false]) {
        it(`${backend}: kernel = reference, forward and every gradient, rows ${rows} L ${L} dim ${dim} N ${N}${full ? ' with D, bias, softplus' : ''}`, async () => {
          const h = host(rows, L, dim, N, full);
          const err = await kernelVsReference(backend, h, Object.keys(h), (t, reference) =>
            (reference ? selectiveScanChannelsLastOp.reference : selectiveScanChannelsLastOp)(t, { deltaSoftplus: full }),
          );
          expect(err).toBeLessThan(5e-5);
        });
      }
    }
  }

  it('rejects mismatched shapes naming the argument', () => {
    const u = tf.zeros([1, 4, 3]);
    const ok = { u, delta: tf.zeros([1, 4, 3]), A: tf.zeros([3, 2]), B: tf.zeros([1, 4, 2]), C: tf.zeros([1, 4, 2]) };
    expect(() => selectiveScanChannelsLast({ ...ok, B: tf.zeros([1, 2, 4]) })).toThrow(/'B' must have shape \[1, 4, 2\]/);
    expect(() => selectiveScanChannelsLast({ ...ok, A: tf.zeros([2, 2]) })).toThrow(/'A' must have shape \[dim=3, N ≥ 1\]/);
    expect(() => selectiveScanChannelsLast({ ...ok, delta: tf.zeros([1, 3, 4]) })).toThrow(/'delta' must have shape \[1, 4, 3\]/);
  });
});
