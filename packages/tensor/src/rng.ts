/**
 * Seeded randomness. Numbers are drawn in JavaScript (xoshiro128**, seeded through
 * SplitMix32) and then uploaded, so the same seed gives bit-identical tensors on every
 * backend, and the generator's state can be saved in a checkpoint and restored.
 */
import { tf } from './tf.js';

/** The generator's whole state: four 32-bit words. Plain data, safe to JSON-encode. */
export type RngState = [number, number, number, number];

export interface Rng {
  /** Next float in [0, 1) with 24 random bits (exact in float32). */
  next(): number;
  /** Next unsigned 32-bit integer. */
  nextUint32(): number;
  /** Integer uniformly in [low, high). */
  int(low: number, high: number): number;
  uniformArray(n: number, min?: number, max?: number): Float32Array;
  normalArray(n: number, mean?: number, std?: number): Float32Array;
  uniform(shape: number[], min?: number, max?: number): tf.Tensor;
  normal(shape: number[], mean?: number, std?: number): tf.Tensor;
  /** Integers uniformly in [low, high), as an int32 tensor. */
  randint(shape: number[], low: number, high: number): tf.Tensor;
  /** 1 with probability p, else 0, as a float32 tensor. */
  bernoulli(shape: number[], p: number): tf.Tensor;
  /** Shuffles in place (Fisher–Yates) and returns the same array. */
  shuffle<T>(items: T[]): T[];
  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array;
  /** An independent generator derived from this one (advances this one by one draw). */
  fork(): Rng;
  getState(): RngState;
  setState(state: RngState): void;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Creates a generator from an integer seed or a saved state. */
export function createRng(seedOrState: number | RngState): Rng {
  let s: RngState;
  if (typeof seedOrState === 'number') {
    if (!Number.isFinite(seedOrState)) throw new Error(`createRng: seed must be a finite number, got ${seedOrState}`);
    // Mix both 32-bit halves so seeds above 2^32 still differ.
    const mix = splitmix32((seedOrState >>> 0) ^ Math.imul(Math.floor(seedOrState / 2 ** 32) >>> 0, 0x27d4eb2d));
    s = [mix(), mix(), mix(), mix()];
  } else {
    if (!Array.isArray(seedOrState) || seedOrState.length !== 4 || seedOrState.some((w) => !Number.isInteger(w))) {
      throw new Error(`createRng: a state must be four 32-bit integers, got ${JSON.stringify(seedOrState)}`);
    }
    s = seedOrState.map((w) => w >>> 0) as RngState;
  }
  if (s.every((w) => w === 0)) s[0] = 1; // xoshiro's one forbidden state

  const nextUint32 = (): number => {
    const result = Math.imul(((Math.imul(s[1], 5) << 7) | (Math.imul(s[1], 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = ((s[3] << 11) | (s[3] >>> 21)) >>> 0;
    return result;
  };
  const next = (): number => (nextUint32() >>> 8) / 16777216;

  const int = (low: number, high: number): number => {
    if (!(high > low)) throw new Error(`rng.int: high (${high}) must exceed low (${low})`);
    const span = high - low;
    if (span > 2 ** 32) throw new Error(`rng.int: range ${span} exceeds 2^32`);
    // Rejection sampling keeps every integer equally likely.
    const limit = Math.floor(2 ** 32 / span) * span;
    let x = nextUint32();
    while (x >= limit) x = nextUint32();
    return low + (x % span);
  };

  const uniformArray = (n: number, min = 0, max = 1): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = min + (max - min) * next();
    return out;
  };

  const normalArray = (n: number, mean = 0, std = 1): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // Box–Muller on (0, 1] × [0, 1): both values of a pair are used.
      const u1 = 1 - next();
      const u2 = next();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  };

  const rng: Rng = {
    next,
    nextUint32,
    int,
    uniformArray,
    normalArray,
    uniform: (shape, min = 0, max = 1) => tf.tensor(uniformArray(size(shape), min, max), shape, 'float32'),
    normal: (shape, mean = 0, std = 1) => tf.tensor(normalArray(size(shape), mean, std), shape, 'float32'),
    randint: (shape, low, high) => {
      const out = new Int32Array(size(shape));
      for (let i = 0; i < out.length; i++) out[i] = int(low, high);
      return tf.tensor(out, shape, 'int32');
    },
    bernoulli: (shape, p) => {
      const out = new Float32Array(size(shape));
      for (let i = 0; i < out.length; i++) out[i] = next() < p ? 1 : 0;
      return tf.tensor(out, shape, 'float32');
    },
    shuffle: (items) => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(0, i + 1);
        const tmp = items[i]!;
        items[i] = items[j]!;
        items[j] = tmp;
      }
      return items;
    },
    permutation: (n) => {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = i;
      for (let i = n - 1; i > 0; i--) {
        const j = int(0, i + 1);
        const tmp = out[i]!;
        out[i] = out[j]!;
        out[j] = tmp;
      }
      return out;
    },
    fork: () => createRng(nextUint32() * 2 ** 21 + (nextUint32() >>> 11)),
    getState: () => [...s] as RngState,
    setState: (state) => {
      const restored = createRng(state).getState();
      s[0] = restored[0];
      s[1] = restored[1];
      s[2] = restored[2];
      s[3] = restored[3];
    },
  };
  return rng;
}
