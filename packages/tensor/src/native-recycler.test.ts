/**
 * Output recycling on kiln-native: a disposed tensor's array is reused only when nothing
 * outside the backend can see it. Arrays read with dataSync()/data(), shared by a slice
 * view or a second tensor, are never handed out again; everything else is.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOLED_MIN_ELEMENTS } from './native-backend-kernels.js';
import { NATIVE_BACKEND_NAME, type NativeBackend, registerNativeBackend } from './native-backend.js';
import { OutputRecycler } from './native-recycler.js';
import { tf } from './tf.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('OutputRecycler', () => {
  const make = (limitBytes?: number) => {
    let allocated = 0;
    const r = new OutputRecycler((n) => {
      allocated++;
      return new Float32Array(n);
    }, limitBytes);
    return { r, allocated: () => allocated };
  };

  it('reuses an array once its only tensor released it', () => {
    const { r, allocated } = make();
    const a = r.take(8);
    r.registered(a);
    r.released(a);
    expect(r.take(8)).toBe(a);
    expect(r.take(8)).not.toBe(a);
    expect(allocated()).toBe(2);
    expect(r.stats()).toMatchObject({ hits: 1, misses: 2, recycled: 1 });
  });

  it('never reuses an array that was read out, registered twice, or viewed', () => {
    const { r } = make();
    const read = r.take(8);
    r.registered(read);
    r.escaped(read);
    r.released(read);
    const twice = r.take(8);
    r.registered(twice);
    r.registered(twice);
    r.released(twice);
    const viewed = r.take(8);
    r.registered(viewed);
    r.registered(viewed.subarray(2, 4));
    r.released(viewed);
    const neverRegistered = r.take(8);
    r.released(neverRegistered);
    for (let i = 0; i < 4; i++) expect([read, twice, viewed, neverRegistered]).not.toContain(r.take(8));
    expect(r.stats()).toMatchObject({ recycled: 0, skipped: 4 });
  });

  it('keeps at most limitBytes cached, dropping the arrays freed longest ago, and ignores arrays it did not allocate', () => {
    const { r } = make(128);
    const [a, b, c] = [r.take(16), r.take(16), r.take(8)];
    for (const x of [a, b, c]) r.registered(x);
    r.released(a);
    r.released(b);
    expect(r.stats().cachedBytes).toBe(128);
    r.released(c); // over the limit: a, the oldest, goes
    expect(r.stats()).toMatchObject({ cachedBytes: 96, evicted: 1, skipped: 0 });
    expect(r.take(16)).toBe(b);
    expect(r.take(16)).not.toBe(a);
    expect(r.take(8)).toBe(c);
    // Taken and released again, an array counts as freed at its last release.
    const { r: r2 } = make(128);
    const [d, e, f] = [r2.take(16), r2.take(16), r2.take(16)];
    for (const x of [d, e, f]) r2.registered(x);
    r2.released(d);
    r2.released(e);
    expect(r2.take(16)).toBe(e);
    r2.registered(e);
    r2.released(e);
    r2.released(f); // d is now the oldest
    expect(r2.stats()).toMatchObject({ cachedBytes: 128, evicted: 1 });
    expect(r2.take(16)).toBe(f);
    expect(r2.take(16)).toBe(e);
    const foreign = new Float32Array(16);
    r2.registered(foreign);
    r2.released(foreign);
    expect(r2.stats().recycled).toBe(4);
    r2.clear();
    expect(r2.stats().cachedBytes).toBe(0);
    expect(r2.take(16)).not.toBe(d);
  });
});

const native = (await registerNativeBackend()).ok;

describe.skipIf(!native)('recycling on kiln-native', () => {
  const N = POOLED_MIN_ELEMENTS * 2 + 3;
  const ramp = (offset: number) => Float32Array.from({ length: N }, (_, i) => i + offset);
  let backend: NativeBackend;

  beforeAll(async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    backend = tf.backend() as NativeBackend;
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  /** Runs same-sized native ops, disposing each result, to pull arrays off the free lists. */
  function churn(rounds: number, value: number): void {
    const x = tf.fill([N], value);
    for (let i = 0; i < rounds; i++) {
      tf.tidy(() => {
        tf.relu(tf.add(tf.mul(x, 2), 1));
      });
      if (i % 8 === 7) gc();
    }
    x.dispose();
  }

  it('reuses the arrays of disposed intermediates', () => {
    churn(4, 1);
    const before = backend.outputPoolStats().recycler!;
    churn(20, 2);
    const after = backend.outputPoolStats().recycler!;
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(55); // 3 outputs per round, almost all reused
    expect(after.misses - before.misses).toBeLessThanOrEqual(5);
  });

  it('reuses small outputs too (below the allocF32 threshold)', () => {
    const x = tf.fill([64, 64], 1);
    const before = backend.outputPoolStats().recycler!;
    for (let i = 0; i < 20; i++) {
      tf.tidy(() => {
        tf.relu(tf.add(tf.mul(x, 2), 1));
      });
    }
    const after = backend.outputPoolStats().recycler!;
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(55);
    expect(after.misses - before.misses).toBeLessThanOrEqual(5);
    // A small array read out is never handed out again.
    const t = tf.add(x, 5);
    const held = t.dataSync();
    t.dispose();
    for (let i = 0; i < 10; i++) {
      tf.tidy(() => {
        tf.relu(tf.add(tf.mul(x, 2), 1));
      });
    }
    expect(held.every((v) => v === 6)).toBe(true);
    x.dispose();
  });

  it('never overwrites an array the user holds from dataSync() or data() after disposing its tensor', async () => {
    const a = tf.tensor(ramp(0));
    const t1 = tf.add(a, 1);
    const t2 = tf.mul(a, 3);
    const held1 = t1.dataSync();
    const held2 = await t2.data();
    tf.dispose([t1, t2]);
    churn(40, -5);
    expect(held1).toEqual(ramp(1));
    expect(Array.from(held2 as Float32Array).every((v, i) => v === i * 3)).toBe(true);
    a.dispose();
  });

  it('never reuses an array still visible through a slice of it', () => {
    const a = tf.tensor(ramp(0));
    const big = tf.add(a, 10); // a native output
    const head = tf.slice(big, [0], [N - 1]); // tfjs-cpu slices by subarray view
    big.dispose();
    churn(40, 7);
    const got = head.dataSync();
    expect(got[0]).toBe(10);
    expect(got[N - 2]).toBe(N - 2 + 10);
    tf.dispose([a, head]);
  });

  it('keeps a variable created from an output intact when that output is disposed', () => {
    const a = tf.tensor(ramp(0));
    const init = tf.add(a, 0.5);
    const v = tf.variable(init);
    init.dispose(); // the variable still holds the same data
    churn(30, 3);
    const values = v.dataSync();
    expect(values[0]).toBe(0.5);
    expect(values[N - 1]).toBe(N - 1 + 0.5);
    tf.dispose([a, v]);
  });

  it('keeps every array read out during a training loop with GC churn unchanged', () => {
    const w = tf.variable(tf.fill([N], 0.25));
    const x = tf.tensor(ramp(0)).div(N);
    const opt = tf.train.sgd(0.1);
    const snapshots: { values: Float32Array; copy: Float32Array }[] = [];
    for (let step = 0; step < 30; step++) {
      opt.minimize(() => tf.sum(tf.square(tf.sub(tf.mul(w, x), 1))));
      if (step % 3 === 0) {
        const values = w.dataSync() as Float32Array;
        snapshots.push({ values, copy: values.slice() });
      }
      if (step % 5 === 4) gc();
    }
    for (const s of snapshots) expect(s.values).toEqual(s.copy);
    expect(new Set(snapshots.map((s) => s.values)).size).toBe(snapshots.length);
    tf.dispose([w, x]);
    opt.dispose();
  });

  it('KILN_NATIVE_POOL=off allocates every output afresh', () => {
    const plain = new (backend.constructor as typeof NativeBackend)(backend.addon, { KILN_NATIVE_POOL: 'off' });
    expect(plain.outputPoolStats()).toEqual({ recycler: null, native: null });
    const a = plain.outputArray(N);
    expect(a.length).toBe(N);
    expect(plain.outputArray(N)).not.toBe(a);
    plain.dispose();
  });
});
