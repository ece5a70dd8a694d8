import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { ActivationOffloader } from './offload.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('ActivationOffloader', () => {
  it('moves a tensor off the backend into a host array and back, bit for bit, counting bytes', () => {
    const off = new ActivationOffloader();
    const t = createRng(1).normal([64, 32]);
    const values = Float32Array.from(t.dataSync());
    const before = tf.memory().numBytes;
    const host = off.offload(t);
    t.dispose();
    expect(tf.memory().numBytes).toBe(before - 64 * 32 * 4); // the backend no longer holds it
    expect(off.hostBytes).toBe(64 * 32 * 4);
    const back = off.reload(host);
    expect(back.shape).toEqual([64, 32]);
    expect(Array.from(back.dataSync())).toEqual(Array.from(values));
    expect(off.hostBytes).toBe(0);
    expect(off.peakHostBytes).toBe(64 * 32 * 4);
    expect(off.reloadedBytes).toBe(off.offloadedBytes);
    const ints = off.offload(tf.tensor1d([3, -4], 'int32'));
    expect(Array.from(off.reload(ints).dataSync())).toEqual([3, -4]);
  });

  it('rejects dtypes it cannot park', () => {
    expect(() => new ActivationOffloader().offload(tf.tensor1d([1, 0], 'bool'))).toThrow(/dtype bool/);
  });
});
