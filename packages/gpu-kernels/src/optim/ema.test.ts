import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { emaUpdate, emaUpdateOp } from './ema.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('emaUpdate', () => {
  it('moves the average towards the value by 1 − momentum', () => {
    expect(Array.from(emaUpdate(tf.tensor1d([1, 2]), tf.tensor1d([3, 6]), 0.75).dataSync())).toEqual([1.5, 3]);
  });

  for (const backend of backends) {
    for (const shape of [[1], [7, 3], [50000]]) {
      it(`${backend}: kernel = reference, forward and gradient, [${shape}]`, async () => {
        const err = await kernelVsReference(backend, { average: hostNormal(shape, 1), value: hostNormal(shape, 2) }, ['average', 'value'], (t, reference) =>
          (reference ? emaUpdateOp.reference : emaUpdateOp)(t, { momentum: 0.996 }),
        );
        expect(err).toBeLessThan(1e-6);
      });
    }
  }

  it('rejects mismatched shapes and a missing momentum', () => {
    expect(() => emaUpdate(tf.zeros([2]), tf.zeros([3]), 0.9)).toThrow(/emaUpdate: 'value' \[3\] must have the shape of 'average' \[2\]/);
    expect(() => emaUpdateOp({ average: tf.zeros([2]), value: tf.zeros([2]) }, {} as never)).toThrow(/'momentum' must be a finite number/);
  });
});
