/**
 * countReads on the backend under test (`cpu`, or `webgpu` in the `test:webgpu` pass):
 * a training step that keeps its loss on the device reads nothing, the logged loss is one
 * asynchronous read, synchronous reads are counted with their call site.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeReads, countReads } from './read-counter.js';
import { initTestBackend, testBackendName } from './test-backend.js';
import { tf } from './tf.js';

const backend = testBackendName();

/** One Adam step of a small MLP; `read` says how the loss comes back. */
function trainStep(opt: tf.Optimizer, vars: tf.Variable[], x: tf.Tensor, y: tf.Tensor): tf.Scalar {
  const [w1, w2] = vars as [tf.Variable, tf.Variable];
  return opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(tf.relu(tf.matMul(x, w1)), w2)) as tf.Scalar, true)!;
}

function setUp() {
  const x = tf.randomNormal([16, 4], 0, 1, 'float32', 1);
  const y = tf.randomNormal([16, 1], 0, 1, 'float32', 2);
  const vars = [tf.variable(tf.randomNormal([4, 8], 0, 0.3, 'float32', 3)), tf.variable(tf.randomNormal([8, 1], 0, 0.3, 'float32', 4))];
  return { x, y, vars, opt: tf.train.adam(0.01) };
}

describe(`countReads on ${backend}`, () => {
  beforeAll(async () => {
    await initTestBackend();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('counts no read for a step whose loss stays on the device, one for the logged loss', async () => {
    const { x, y, vars, opt } = setUp();
    const quiet = await countReads(() => tf.tidy(() => trainStep(opt, vars, x, y).dispose()));
    expect(quiet.count.sync + quiet.count.async, describeReads(quiet.count)).toBe(0);
    const logged = await countReads(async () => {
      const loss = trainStep(opt, vars, x, y);
      const value = (await loss.data())[0]!;
      loss.dispose();
      return value;
    });
    expect(logged.count).toMatchObject({ sync: 0, async: 1 });
    expect(logged.count.reads[0]).toMatchObject({ kind: 'async', shape: [] });
    expect(Number.isFinite(logged.result)).toBe(true);
    tf.dispose([x, y, ...vars]);
    opt.dispose();
  });

  it('counts a synchronous read and names where it was made', async () => {
    const t = tf.add(tf.range(0, 1000), 1); // 1000 elements: computed on the device on webgpu
    await t.data(); // on webgpu the values now live on the host too: reading them again costs nothing
    const u = tf.mul(t, 2);
    const { count } = await countReads(() => {
      const host = t.dataSync();
      try {
        return [...host, ...(u.arraySync() as number[])];
      } catch (err) {
        // webgpu in Node cannot read synchronously (tfjs reads through an OffscreenCanvas).
        if (backend !== 'webgpu') throw err;
        return [];
      }
    });
    // cpu: both reads count; webgpu: only u's, whose values are on the device.
    expect(count).toMatchObject(backend === 'webgpu' ? { sync: 1, async: 0 } : { sync: 2, async: 0 });
    expect(count.reads.at(-1)).toMatchObject({ kind: 'sync', shape: [1000] });
    expect(count.reads.at(-1)!.site).toMatch(/read-counter\.test\.ts/);
    expect(describeReads(count)).toMatch(/^sync read of \[1000\] at /);
    tf.dispose([t, u]);
  });

  it('restores the backend and engine when the function throws', async () => {
    const engine = tf.engine() as unknown as Record<string, unknown>;
    const b = tf.backend() as unknown as Record<string, unknown>;
    const before = [engine.readSync, engine.read, b.readSync, b.read];
    await expect(
      countReads(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect([engine.readSync, engine.read, b.readSync, b.read]).toEqual(before);
    expect(Object.hasOwn(engine, 'readSync')).toBe(false);
  });
});

describe.skipIf(backend !== 'webgpu')('countReads on webgpu sees reads made inside kernels', () => {
  beforeAll(async () => {
    await initTestBackend();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('counts a kernel that reads its device input back (tfjs tile of rank 5, which then fails in Node)', async () => {
    const x = tf.add(tf.ones([1, 1, 1, 10, 100]), 1); // 1000 elements: computed on the device
    let seen = 0;
    await countReads(async () => {
      try {
        tf.tile(x, [1, 1, 1, 1, 2]).dispose();
      } catch {
        // tfjs-backend-webgpu reads synchronously through an OffscreenCanvas, absent in Node.
      }
      return undefined;
    }).then(({ count }) => {
      seen = count.sync;
    });
    expect(seen).toBe(1);
    x.dispose();
  });
});
