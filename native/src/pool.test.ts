/**
 * The output-buffer pool (src/pool.cc): blocks are recycled only after V8 collects their
 * array and Node runs its finalizer (when the event loop turns), so arrays (and views of
 * them) that are still reachable are never overwritten; the cache and the bytes handed out
 * respect the limit (past it, allocF32 hands out V8-owned memory). And the fused Adam
 * kernel against a float64 reference.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, type NativeAddon } from './index.js';

const loaded = loadNative();
if (!loaded.ok) throw new Error(`@kiln/native tests need the built addon: ${loaded.reason}`);
const addon: NativeAddon = loaded.addon;

// A full collection on demand, without starting node with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = 65536;

/** Allocates and drops `count` pooled arrays filled with `value`, collecting as it goes. */
function churn(count: number, value: number, n = N): void {
  for (let i = 0; i < count; i++) {
    addon.allocF32(n).fill(value);
    if (i % 16 === 15) gc();
  }
  gc();
}

describe('allocF32 pool', () => {
  afterAll(() => {
    addon.setPoolLimit(2 ** 30);
  });

  it('returns writable Float32Arrays of the requested length', () => {
    for (const n of [1, 7, 4096, 100_003]) {
      const a = addon.allocF32(n);
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(n);
      expect(a.byteLength).toBe(n * 4);
      a.fill(2.5);
      expect(a[n - 1]).toBe(2.5);
    }
  });

  it('rejects bad sizes with an error naming the argument', () => {
    expect(() => addon.allocF32(0)).toThrow(/allocF32: argument n must be an integer >= 1, got 0/);
    expect(() => addon.allocF32(1.5)).toThrow(/allocF32: argument n must be an integer >= 1/);
    expect(() => (addon.allocF32 as (n: unknown) => Float32Array)('8')).toThrow(/allocF32: argument n must be a number/);
  });

  /** A few event-loop turns with collections in between: V8 posts the weak callbacks as a task, Node then its finalizers. */
  const turn = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  it('recycles collected arrays once the event loop has turned', async () => {
    churn(8, 0);
    await turn();
    const before = addon.poolStats();
    expect(before.cachedBytes).toBeGreaterThan(0);
    churn(8, 1);
    const after = addon.poolStats();
    // The second churn reuses the blocks the first one left behind (all but the odd array
    // V8 had not collected yet).
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(6);
    expect(after.misses - before.misses).toBeLessThanOrEqual(2);
    await turn();
    expect(addon.poolStats().liveBytes).toBeLessThan(after.liveBytes);
  });

  it('hands out V8-owned memory past the limit, so a synchronous loop cannot pile up garbage', async () => {
    await turn();
    addon.setPoolLimit(N * 4 * 3);
    const before = addon.poolStats();
    const arrays = Array.from({ length: 6 }, (_, i) => addon.allocF32(N).fill(i));
    const after = addon.poolStats();
    expect(after.unpooled - before.unpooled).toBeGreaterThanOrEqual(3);
    expect(after.liveBytes).toBeLessThanOrEqual(N * 4 * 3);
    arrays.forEach((a, i) => {
      expect(a.length).toBe(N);
      expect(a.every((v) => v === i)).toBe(true);
    });
    addon.setPoolLimit(2 ** 30);
  });

  it('never hands out memory of an array, or a view of it, that is still reachable', () => {
    const held = addon.allocF32(N).fill(42);
    const parentOfView = addon.allocF32(N).fill(7);
    const view = parentOfView.subarray(100, 200);
    const kept: Float32Array[] = [];
    for (let round = 0; round < 6; round++) {
      churn(40, -round);
      // Freshly recycled blocks must never alias anything we still hold.
      const fresh = addon.allocF32(N);
      for (const other of [held, view, ...kept]) expect(fresh.buffer).not.toBe(other.buffer);
      fresh.fill(round);
      kept.push(fresh);
    }
    expect(held.every((v) => v === 42)).toBe(true);
    expect(view.every((v) => v === 7)).toBe(true);
    kept.forEach((a, round) => {
      expect(a.every((v) => v === round)).toBe(true);
    });
  });

  it('keeps at most the limit cached, frees everything on trim', async () => {
    addon.setPoolLimit(N * 4 * 2);
    churn(32, 3);
    await turn();
    const limited = addon.poolStats();
    expect(limited.cachedBytes).toBeLessThanOrEqual(N * 4 * 2);
    expect(limited.released).toBeGreaterThan(0);
    addon.setPoolLimit(2 ** 30);
    churn(8, 4);
    await turn();
    expect(addon.trimPool()).toBeGreaterThanOrEqual(0);
    expect(addon.poolStats().cachedBytes).toBe(0);
    expect(() => addon.setPoolLimit(-1)).toThrow(/setPoolLimit: argument bytes must be an integer >= 0/);
  });
});

describe('adamUpdate', () => {
  /** tfjs-core's AdamOptimizer step in float64 (hyper-parameters as float32, as tfjs has them). */
  function reference(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, c1: number, c2: number) {
    const f = Math.fround;
    const out = { w: new Float64Array(w.length), m: new Float64Array(w.length), v: new Float64Array(w.length) };
    for (let i = 0; i < w.length; i++) {
      const mi = m[i]! * f(b1) + g[i]! * f(1 - b1);
      const vi = v[i]! * f(b2) + g[i]! * g[i]! * f(1 - b2);
      out.m[i] = mi;
      out.v[i] = vi;
      out.w[i] = w[i]! - f(lr) * (mi / c1 / (Math.sqrt(vi / c2) + f(eps)));
    }
    return out;
  }

  const rand = (n: number, seed: number, lo = -1) => {
    let s = seed;
    return Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return lo + ((1 - lo) * s) / 2147483648;
    });
  };

  it('matches the reference on odd and multi-threaded sizes, in place or not', () => {
    for (const n of [1, 3, 1023, 70001]) {
      const w = rand(n, 1);
      const g = rand(n, 2);
      const m = rand(n, 3).map((x) => x * 0.1);
      const v = rand(n, 4, 0).map((x) => x * 0.01);
      const want = reference(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, 1 - 0.9 ** 3, 1 - 0.999 ** 3);
      const ow = new Float32Array(n);
      const om = new Float32Array(n);
      const ov = new Float32Array(n);
      addon.adamUpdate(w, g, m, v, ow, om, ov, 0.01, 0.9, 0.999, 1e-7, 1 - 0.9 ** 3, 1 - 0.999 ** 3);
      const worst = (got: Float32Array, ref: Float64Array) => got.reduce((e, x, i) => Math.max(e, Math.abs(x - ref[i]!)), 0);
      expect(worst(om, want.m)).toBeLessThan(1e-6);
      expect(worst(ov, want.v)).toBeLessThan(1e-6);
      expect(worst(ow, want.w)).toBeLessThan(1e-5);
      // In place: outputs are the inputs.
      addon.adamUpdate(w, g, m, v, w, m, v, 0.01, 0.9, 0.999, 1e-7, 1 - 0.9 ** 3, 1 - 0.999 ** 3);
      expect(Array.from(w)).toEqual(Array.from(ow));
      expect(Array.from(m)).toEqual(Array.from(om));
      expect(Array.from(v)).toEqual(Array.from(ov));
    }
  });

  it('names the argument whose length is wrong', () => {
    const a = new Float32Array(4);
    const b = new Float32Array(5);
    expect(() => addon.adamUpdate(a, a, a, b, a, a, a, 0.1, 0.9, 0.999, 1e-7, 0.1, 0.001)).toThrow(/adamUpdate: v has 5 elements, expected 4/);
    expect(() => addon.adamUpdate(a, a, a, a, a, a, b, 0.1, 0.9, 0.999, 1e-7, 0.1, 0.001)).toThrow(/adamUpdate: outV has 5 elements, expected 4/);
  });
});
