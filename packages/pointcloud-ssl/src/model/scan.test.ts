import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SelectiveScanArgs, selectiveScanNaive, selectiveScanReference } from './scan.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function randomArgs(seed: number, batch: number, dim: number, len: number, n: number): SelectiveScanArgs {
  const rng = createRng(seed);
  return {
    u: rng.normal([batch, dim, len]),
    delta: rng.normal([batch, dim, len], 0, 1),
    A: tf.neg(tf.exp(rng.normal([dim, n], 0, 0.5))),
    B: rng.normal([batch, n, len]),
    C: rng.normal([batch, n, len]),
    D: rng.normal([dim]),
    z: rng.normal([batch, dim, len]),
    deltaBias: rng.normal([dim], 0, 0.5),
    deltaSoftplus: true,
    initialState: rng.normal([batch, dim, n]),
    returnLastState: true,
  };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
}

describe('selectiveScanReference', () => {
  it.each([
    [1, 3, 37, 4, 8],
    [2, 2, 16, 3, 16],
    [2, 3, 5, 2, 4],
    [1, 2, 70, 5, 7],
  ])('matches the per-step loop (batch %i, dim %i, L %i, N %i, chunk %i)', (batch, dim, len, n, chunk) => {
    const args = randomArgs(batch * 100 + len, batch, dim, len, n);
    const naive = selectiveScanNaive(args);
    for (const algorithm of ['ssd', 'recurrence'] as const) {
      const ref = selectiveScanReference(args, { chunkSize: chunk, algorithm });
      expect(maxAbsDiff(ref.y, naive.y), algorithm).toBeLessThan(1e-4);
      expect(maxAbsDiff(ref.lastState!, naive.lastState!), algorithm).toBeLessThan(1e-4);
    }
  });

  it('has the gradients of the per-step loop for every input', () => {
    const args = randomArgs(7, 2, 3, 21, 4);
    const names = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias', 'initialState'] as const;
    const xs = names.map((k) => args[k] as tf.Tensor);
    const rng = createRng(3);
    const wy = rng.normal([2, 3, 21]);
    const ws = rng.normal([2, 3, 4]);
    const loss = (impl: typeof selectiveScanNaive) => (...ts: tf.Tensor[]) => {
      const a: SelectiveScanArgs = { ...args };
      names.forEach((k, i) => {
        (a as unknown as Record<string, tf.Tensor>)[k] = ts[i]!;
      });
      const r = impl(a);
      return tf.add(tf.sum(tf.mul(r.y, wy)), tf.sum(tf.mul(r.lastState!, ws)));
    };
    const gNaive = tf.grads(loss(selectiveScanNaive))(xs);
    for (const algorithm of ['ssd', 'recurrence'] as const) {
      const gRef = tf.grads(loss((a) => selectiveScanReference(a, { chunkSize: 5, algorithm })))(xs);
      names.forEach((k, i) => {
        const scale = Math.max(1, tf.max(tf.abs(gNaive[i]!)).dataSync()[0]!);
        expect(maxAbsDiff(gRef[i]!, gNaive[i]!) / scale, `${algorithm} ${k}`).toBeLessThan(1e-4);
      });
    }
  });
});

describe('kernelScan (@kiln/gpu-kernels)', () => {
  it('matches the reference forward and backward, and swaps in and out', async () => {
    const { kernelScan, useKernelScan, selectiveScanName, setSelectiveScan } = await import('./scan.js');
    expect(selectiveScanName()).toBe('gpu-kernels');
    const args = randomArgs(9, 2, 3, 40, 4);
    const ref = selectiveScanReference(args);
    const ker = kernelScan(args);
    expect(maxAbsDiff(ref.y, ker.y)).toBeLessThan(1e-4);
    expect(maxAbsDiff(ref.lastState!, ker.lastState!)).toBeLessThan(1e-4);
    const f = (impl: typeof kernelScan) => (u: tf.Tensor) => tf.sum(tf.square(impl({ ...args, u, returnLastState: false }).y));
    expect(maxAbsDiff(tf.grad(f(kernelScan))(args.u), tf.grad(f((a) => selectiveScanReference(a)))(args.u))).toBeLessThan(1e-3);
    useKernelScan();
    expect(selectiveScanName()).toBe('gpu-kernels');
    setSelectiveScan(null);
    expect(selectiveScanName()).toBe('reference');
  });
});
