/** Helpers shared by this package's tests (not exported from the package). */
import { loadNative, type NativeAddon } from './index.js';

/** The built addon; the tests cannot run without it. */
export function requireAddon(): NativeAddon {
  const loaded = loadNative();
  if (!loaded.ok) throw new Error(`@kiln/native tests need the built addon: ${loaded.reason}`);
  return loaded.addon;
}

/** xorshift32: small and deterministic, so a failing case reproduces from its seed. */
export class TestRandom {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  uint32(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }
  /** Integer in [low, high). */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length)]!;
  }
  /** n floats uniform in [low, high). */
  floats(n: number, low = -1, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.next();
    return out;
  }
  /** n integers uniform in [low, high). */
  ints(n: number, low: number, high: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(low, high);
    return out;
  }
}

/** Largest |got − want| / (1 + |want|); NaN where exactly one side is NaN counts as infinite. */
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Number.POSITIVE_INFINITY;
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(g) || Number.isNaN(w)) {
      if (Number.isNaN(g) !== Number.isNaN(w)) return Number.POSITIVE_INFINITY;
      continue;
    }
    if (g === w) continue;
    e = Math.max(e, Math.abs(g - w) / (1 + Math.abs(w)));
  }
  return e;
}

/** Runs fn with the addon's pool resized to `threads`, restoring the previous size after. */
export function withThreads<T>(addon: NativeAddon, threads: number, fn: () => T): T {
  const before = addon.info().threads;
  addon.setNumThreads(threads);
  try {
    return fn();
  } finally {
    addon.setNumThreads(before);
  }
}
