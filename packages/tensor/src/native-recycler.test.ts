/**
 * Output recycling on kiln-native: a disposed tensor's memory is reused only when nothing
 * outside the backend can see it. Arrays read with dataSync()/data(), shared by a slice
 * view or a second tensor, are never handed out again; everything else is, by size class,
 * so outputs whose lengths drift from step to step reuse it too.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOLED_MIN_ELEMENTS } from './native-backend-kernels.js';
import { NATIVE_BACKEND_NAME, type NativeBackend, registerNativeBackend } from './native-backend.js';
import { OutputRecycler, capacityFor } from './native-recycler.js';
import { tf } from './tf.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('capacityFor', () => {
  it('rounds up to 8 classes per power of two, at most 12.5 % unused, whole pages above 32 KiB', () => {
    for (let n = 1; n <= 16; n++) expect(capacityFor(n)).toBe(n);
    let previous = 0;
    const classes = new Set<number>();
    const wrong: string[] = [];
    for (let n = 1; n <= 1 << 16; n++) {
      const c = capacityFor(n);
      if (c < n || c < previous) wrong.push(`${n}: ${c} (not monotone or too small)`);
      if (capacityFor(c) !== c) wrong.push(`${n}: ${c} is not its own class`);
      if (n > 16 && (c - n) / c >= 0.125) wrong.push(`${n}: ${c} wastes too much`);
      if (n > 8192 && (c * 4) % 4096 !== 0) wrong.push(`${n}: ${c} is not whole pages`);
      if (n > 1 << 15) classes.add(c);
      previous = c;
    }
    expect(wrong).toEqual([]);
    expect([...classes]).toEqual([9, 10, 11, 12, 13, 14, 15, 16].map((k) => k << 12)); // (2^15, 2^16]
    const big = 12_345_679;
    expect(capacityFor(big)).toBe(12_582_912); // 2^24 / 16 = 1,048,576-element steps
  });
});

describe('OutputRecycler', () => {
  const make = (limitBytes?: number) => {
    const sizes: number[] = [];
    const r = new OutputRecycler((n) => {
      sizes.push(n);
      return new Float32Array(n);
    }, limitBytes);
    return { r, allocated: () => sizes.length, sizes };
  };
  /** Takes an array of n elements, registers it for a tensor and releases it again. */
  const cycle = (r: OutputRecycler, n: number) => {
    const a = r.take(n);
    r.registered(a);
    r.released(a);
    return a;
  };

  it('serves drifting lengths from the free blocks of their size class, as views of the asked length', () => {
    const { r, sizes } = make();
    const first = r.take(12_700);
    expect(first.length).toBe(12_700);
    expect(sizes).toEqual([capacityFor(12_700)]); // allocated at its class's capacity
    expect(first.buffer.byteLength).toBe(capacityFor(12_700) * 4);
    first.fill(1);
    r.registered(first);
    r.released(first);
    // Lengths drifting around 12,700 (one class: (12,288, 13,312]) reuse that one block.
    for (const n of [12_650, 13_000, 12_300, 13_312, 12_289]) {
      const a = r.take(n);
      expect(a.length).toBe(n);
      expect(a.byteOffset).toBe(0);
      expect(a.buffer).toBe(first.buffer);
      a.fill(n);
      r.registered(a);
      r.released(a);
    }
    expect(r.stats()).toMatchObject({ hits: 5, misses: 1, recycled: 6 });
    // Another class gets a block of its own.
    const other = r.take(14_000);
    expect(other.buffer).not.toBe(first.buffer);
    expect(sizes).toEqual([capacityFor(12_700), capacityFor(14_000)]);
    // The same length again gets the same array object back.
    const a = r.take(12_289);
    r.registered(a);
    r.released(a);
    expect(r.take(12_289)).toBe(a);
    // With its own class empty, a request takes a free block of up to two classes up...
    r.registered(other);
    r.released(other);
    const smaller = r.take(12_500);
    expect(smaller.buffer).toBe(other.buffer);
    expect(smaller.length).toBe(12_500);
    r.registered(smaller);
    r.released(smaller); // ...which goes back to its own class
    expect(r.take(14_300).buffer).toBe(other.buffer);
    // ...but never one further up, nor a smaller one.
    const huge = cycle(r, 20_000);
    const tiny = cycle(r, 9_000);
    const between = r.take(12_000);
    expect([huge.buffer, tiny.buffer]).not.toContain(between.buffer);
    expect(between.buffer.byteLength).toBe(capacityFor(12_000) * 4);
  });

  it('never reuses a view that was read out, registered twice, sliced, or never registered', () => {
    const { r } = make();
    const kinds: Float32Array[] = [];
    for (const use of [
      (a: Float32Array) => r.escaped(a),
      (a: Float32Array) => r.registered(a),
      (a: Float32Array) => r.registered(a.subarray(0, 10)),
      (a: Float32Array) => r.registered(new Float32Array(a.buffer)), // the whole block, past the view
    ]) {
      const a = r.take(1000);
      expect(a.buffer.byteLength).toBeGreaterThan(a.byteLength); // a partial view
      r.registered(a);
      use(a);
      r.released(a);
      kinds.push(a);
    }
    const unregistered = r.take(1000);
    r.released(unregistered);
    kinds.push(unregistered);
    for (let i = 0; i < 5; i++) expect(kinds.map((k) => k.buffer)).not.toContain(r.take(1000).buffer);
    expect(r.stats()).toMatchObject({ recycled: 0, skipped: 5, hits: 0 });
  });

  it('tells a partial view (whose buffer is longer) from a whole block', () => {
    const { r } = make();
    const partial = r.take(1000);
    const whole = r.take(capacityFor(1000));
    expect(r.isPartialView(partial)).toBe(true);
    expect(r.isPartialView(whole)).toBe(false);
    expect(r.isPartialView(partial.subarray(0, 10))).toBe(false); // not the array handed out
    expect(r.isPartialView(new Float32Array(1000))).toBe(false);
  });

  it('bounds the cache under drifting sizes, evicting the blocks freed longest ago so they can be collected', async () => {
    const limit = 4 * capacityFor(20_000) * 4;
    const { r } = make(limit);
    const refs: WeakRef<ArrayBufferLike>[] = [];
    // Each length its own class, never asked for again: the cache must not grow past limit.
    let n = 1000;
    for (let i = 0; i < 40; i++) {
      refs.push(new WeakRef(cycle(r, n).buffer));
      n = capacityFor(n) + 1;
      if (n > 20_000) n = 1000 + i;
      expect(r.stats().cachedBytes).toBeLessThanOrEqual(limit);
    }
    expect(r.stats().evicted).toBeGreaterThan(10);
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job ends
    gc();
    const collected = refs.filter((ref) => ref.deref() === undefined).length;
    expect(collected).toBeGreaterThanOrEqual(r.stats().evicted); // evicted blocks are not held on to
  });

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

  it('reuses outputs whose lengths drift from round to round (one size class)', () => {
    const lengths = Array.from({ length: 20 }, (_, k) => N + 150 * k);
    expect(new Set(lengths.map(capacityFor)).size).toBe(1);
    const run = (n: number) => {
      const x = tf.tensor(ramp(0).subarray(0, Math.min(n, N)));
      const xs = tf.tidy(() => tf.pad(x, [[0, n - Math.min(n, N)]], 1));
      const out = tf.tidy(() => tf.relu(tf.add(tf.mul(xs, 2), -5)));
      const got = out.dataSync();
      tf.dispose([x, xs, out]);
      return got;
    };
    run(N); // warm the class
    const before = backend.outputPoolStats().recycler!;
    for (const n of lengths) {
      const got = run(n);
      expect(got.length).toBe(n);
      expect(got[0]).toBe(0);
      expect(got[10]).toBe(15);
      expect(got[n - 1]).toBe(n - 1 < N ? 2 * (n - 1) - 5 : 0);
    }
    const after = backend.outputPoolStats().recycler!;
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(2 * lengths.length - 2); // mul, add: native outputs
    expect(after.misses - before.misses).toBeLessThanOrEqual(4);
  });

  it('hands out a partial view as a copy of exactly its elements, and keeps recycling its block', async () => {
    expect(capacityFor(N)).toBeGreaterThan(N); // N's outputs are partial views
    const a = tf.tensor(ramp(0));
    const t = tf.add(a, 1);
    const recycledBefore = backend.outputPoolStats().recycler!.recycled;
    const held = t.dataSync();
    expect(held.length).toBe(N);
    expect(held.buffer.byteLength).toBe(held.byteLength);
    expect(((await t.bytes()) as Uint8Array).byteLength).toBe(4 * N); // tfjs-core reads the whole buffer
    expect(new Float32Array(t.bufferSync().values.buffer)).toEqual(ramp(1));
    t.dispose();
    expect(backend.outputPoolStats().recycler!.recycled).toBe(recycledBefore + 1);
    churn(20, -5);
    expect(held).toEqual(ramp(1));
    a.dispose();
  });

  it('never reuses an output of a whole class capacity once it was read out', () => {
    const M = capacityFor(N);
    const a = tf.tensor(Float32Array.from({ length: M }, (_, i) => i));
    const t = tf.mul(a, 2);
    const held = t.dataSync();
    const skippedBefore = backend.outputPoolStats().recycler!.skipped;
    t.dispose();
    expect(backend.outputPoolStats().recycler!.skipped).toBe(skippedBefore + 1);
    const x = tf.fill([M], -1);
    for (let i = 0; i < 30; i++) tf.tidy(() => tf.relu(tf.add(tf.mul(x, 2), 1)));
    expect(held[M - 1]).toBe(2 * (M - 1));
    tf.dispose([a, x]);
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
