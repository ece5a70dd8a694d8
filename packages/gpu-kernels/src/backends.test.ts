/**
 * Every op's kernel on every backend this machine has (`cpu`, `kiln-native`, `webgpu`)
 * against the op's reference, forward and gradient, on random and ragged shapes. The
 * reference runs on `cpu` (tfjs's own webgpu ops are not what is under test here); the
 * kernel runs on the backend under test from the same host data. Missing backends are
 * skipped with the reason printed.
 */
import { createRng, initBackend, testBackendName, tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupedMatMul, groupedMatMulOp } from './moe/grouped-matmul.js';
import { gatherRowsOp, moePermute, moeUnpermute, planPermutation, scatterRowsOp } from './moe/permute.js';
import { swigluGradOp, swigluOp } from './moe/swiglu.js';
import { type TopkRouterOptions, topkRouter, topkRouterOp } from './moe/topk-router.js';
import { castFp8Op } from './quant/fp8.js';
import { decodeMiniFloat, E4M3, E5M2 } from './quant/minifloat.js';
import { selectiveScanBackward, selectiveScanOp } from './scan/selective-scan.js';

type Tensor = tf.Tensor;

async function available(name: string): Promise<boolean> {
  try {
    await initBackend({ env: { KILN_BACKEND: name } });
    return true;
  } catch (err) {
    console.log(`[skip] ${name} kernel tests skipped: ${(err as Error).message}`);
    return false;
  } finally {
    await tf.setBackend('cpu');
  }
}

// The default run checks the CPU-memory backends' kernels; the `test:webgpu` pass
// (KILN_TEST_BACKEND=webgpu) checks the WGSL kernels.
const BACKENDS = testBackendName() === 'cpu' ? ['cpu', 'kiln-native'] : [testBackendName()];
const present: Record<string, boolean> = {};
for (const b of BACKENDS) present[b] = await available(b);

/** Host data: built once, turned into tensors on whichever backend is active. */
interface Host {
  shape: number[];
  data: Float32Array | Int32Array;
}
function normal(shape: number[], seed: number, mean = 0, std = 1): Host {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from(createRng(seed).normalArray(n, mean, std)) };
}
function T(h: Host): Tensor {
  return tf.tensor(h.data, h.shape, h.data instanceof Int32Array ? 'int32' : 'float32');
}
function Ts(hs: Record<string, Host | undefined>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(hs)) if (v) out[k] = T(v);
  return out;
}

async function read(ts: Tensor | Tensor[]): Promise<number[][]> {
  const list = Array.isArray(ts) ? ts : [ts];
  return Promise.all(list.map(async (t) => Array.from(await t.data())));
}

/** `fn` on cpu (reference) and on `backend` (kernel), both from the same host data. */
async function both(backend: string, ref: () => Tensor | Tensor[], kernel: () => Tensor | Tensor[]): Promise<{ want: number[][]; got: number[][] }> {
  await tf.setBackend('cpu');
  const want = await read(tf.tidy(ref));
  await tf.setBackend(backend);
  const got = await read(tf.tidy(kernel));
  return { want, got };
}

function expectClose(got: number[][], want: number[][], tol: number): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    const g = got[i]!;
    expect(g.length).toBe(w.length);
    const scale = 1 + Math.max(0, ...w.map(Math.abs));
    let err = 0;
    for (let j = 0; j < w.length; j++) err = Math.max(err, Math.abs(g[j]! - w[j]!));
    expect(err / scale, `output ${i}`).toBeLessThan(tol);
  });
}

const SCAN_KEYS = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias', 'initialState'] as const;

function scanHost(batch: number, dim: number, N: number, L: number, full: boolean, seed: number): Record<string, Host> {
  const h: Record<string, Host> = {
    u: normal([batch, dim, L], seed),
    delta: normal([batch, dim, L], seed + 1, 0, 0.7),
    A: { shape: [dim, N], data: normal([dim, N], seed + 2, 0.5, 0.5).data.map((v) => -Math.exp(v)) },
    B: normal([batch, N, L], seed + 3),
    C: normal([batch, N, L], seed + 4),
  };
  if (full) {
    h.D = normal([dim], seed + 5);
    h.z = normal([batch, dim, L], seed + 6);
    h.deltaBias = normal([dim], seed + 7, 0, 0.3);
    h.initialState = normal([batch, dim, N], seed + 8);
  }
  return h;
}

/** out, lastState and the gradient of Σ out·w1 + Σ last·w2 in every input. */
function scanAll(h: Record<string, Host>, useRef: boolean): Tensor[] {
  const keys = SCAN_KEYS.filter((k) => h[k]);
  const [batch, dim] = h.u!.shape as [number, number];
  const N = h.A!.shape[1]!;
  const w1 = T(normal(h.u!.shape, 77));
  const w2 = T(normal([batch, dim, N], 78));
  const run = (...xs: Tensor[]) => {
    const inputs: Record<string, Tensor> = {};
    keys.forEach((k, i) => {
      inputs[k] = xs[i]!;
    });
    return useRef ? selectiveScanOp.reference(inputs, { deltaSoftplus: true }) : selectiveScanOp(inputs, { deltaSoftplus: true, chunkSize: 4 });
  };
  const xs = keys.map((k) => T(h[k]!));
  const outs = run(...xs);
  const grads = tf.grads((...ys: Tensor[]) => {
    const [out, last] = run(...ys);
    return tf.add(tf.sum(tf.mul(out!, w1)), tf.sum(tf.mul(last!, w2)));
  })(xs);
  return [...outs, ...grads];
}

for (const backend of BACKENDS) {
  describe.skipIf(!present[backend])(`kernels on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend({ env: { KILN_BACKEND: backend } });
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    it('every op runs a kernel here', async () => {
      await tf.setBackend(backend);
      for (const op of [selectiveScanOp, selectiveScanBackward, groupedMatMulOp, gatherRowsOp, scatterRowsOp, swigluOp, swigluGradOp, topkRouterOp, castFp8Op]) {
        expect(op.hasKernel(), op.opName).toBe(true);
      }
    });

    it.each([
      [2, 3, 4, 9, true],
      [1, 2, 3, 1, true],
      [1, 4, 2, 13, false],
    ] as const)('selectiveScan [%i, %i, N=%i, L=%i] full=%s: out, lastState and all gradients match the reference', async (batch, dim, N, L, full) => {
      const h = scanHost(batch, dim, N, L, full, batch * 100 + L);
      const { want, got } = await both(backend, () => scanAll(h, true), () => scanAll(h, false));
      expectClose(got, want, 3e-4);
    });

    it.each([
      [[3, 0, 5, 1], 4, 3],
      [[2, 7, 1], 33, 17],
      [[0, 4, 0], 5, 6],
    ] as const)('groupedMatMul sizes %j K=%i N=%i: forward and gradients match the reference', async (sizes, K, N) => {
      const M = (sizes as readonly number[]).reduce((a, b) => a + b, 0);
      const hx = normal([M, K], K);
      const hw = normal([sizes.length, K, N], N);
      const hdy = normal([M, N], 5);
      const all = (ref: boolean) => () => {
        const f = (a: Tensor, b: Tensor) => (ref ? groupedMatMulOp.reference({ x: a, w: b }, { groupSizes: [...sizes], mode: 'nn' }) : groupedMatMul(a, b, sizes));
        const x = T(hx);
        const w = T(hw);
        const dy = T(hdy);
        return [f(x, w), ...tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(f(a, b), dy)))([x, w])];
      };
      const { want, got } = await both(backend, all(true), all(false));
      expectClose(got, want, 1e-5);
    });

    it.each([
      [[3, 0, 5, 1], 2],
      [[0, 4, 0], 0],
      [[2, 2], 3],
    ] as const)('groupedMatMul with int32 tensor sizes %j and %i rows past the groups: forward and gradients match the reference', async (sizes, extra) => {
      const M = (sizes as readonly number[]).reduce((a, b) => a + b, 0) + extra;
      const [K, N] = [6, 5];
      const hx = normal([M, K], 40 + extra);
      const hw = normal([sizes.length, K, N], 41);
      const hdy = normal([M, N], 42);
      const all = (ref: boolean) => () => {
        const s = tf.tensor1d([...sizes], 'int32');
        const f = (a: Tensor, b: Tensor) => (ref ? groupedMatMulOp.reference({ x: a, w: b, sizes: s }, { mode: 'nn' }) : groupedMatMul(a, b, s));
        const x = T(hx);
        const w = T(hw);
        const dy = T(hdy);
        return [f(x, w), ...tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(f(a, b), dy)))([x, w])];
      };
      const { want, got } = await both(backend, all(true), all(false));
      expectClose(got, want, 1e-5);
    });

    it.each([
      [{ topk: 2 }, 6],
      [{ topk: 3, usePreSoftmax: true, scalingFactor: 2 }, 7],
      [{ topk: 2, scoreFunction: 'sigmoid' as const, numGroups: 4, groupTopk: 2 }, 8],
      [{ topk: 3, scoreFunction: 'sqrtsoftplus' as const }, 5],
      [{ topk: 1, scoreFunction: 'sigmoid' as const }, 3],
    ] as Array<[Omit<TopkRouterOptions, 'expertBias'>, number]>)('topkRouter %j over %i experts: choice, gates and gradient match the reference', async (opts, E) => {
      const hl = normal([11, E], E, 0, 2);
      const hb = opts.scoreFunction ? normal([E], E + 1, 0, 0.2) : undefined;
      const hw = normal([11, E], E + 2);
      const all = (ref: boolean) => () => {
        const inputs = Ts({ logits: hl, expertBias: hb });
        const w = T(hw);
        const f = (l: Tensor): Tensor[] => {
          if (ref) return topkRouterOp.reference({ ...inputs, logits: l }, opts);
          const r = topkRouter(l, inputs.expertBias ? { ...opts, expertBias: inputs.expertBias } : opts);
          return [r.probs, r.topIndices];
        };
        const [probs, idx] = f(inputs.logits!);
        return [probs!, idx!, tf.grad((l: Tensor) => tf.sum(tf.mul(f(l)[0]!, w)))(inputs.logits!)];
      };
      const { want, got } = await both(backend, all(true), all(false));
      expect(got[1]).toEqual(want[1]);
      expectClose(got, want, 1e-5);
    });

    it('moe permute rows: gather and weighted scatter match the references, forward and backward', async () => {
      const nT = 7;
      const E = 3;
      const map = [1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1];
      for (const opts of [{}, { capacity: 2, padToCapacity: true }]) {
        const plan = planPermutation(map, nT, E, opts);
        const hx = normal([nT, 5], 3);
        const hp = normal([plan.sortedIndices.length], 4);
        const hw = normal([nT, 5], 5);
        const all = (ref: boolean) => () => {
          const idx = tf.tensor1d(plan.sortedIndices, 'int32');
          const w = T(hw);
          const f = (a: Tensor, p: Tensor) => {
            const rows = ref ? gatherRowsOp.reference({ x: a, indices: idx }, {}) : gatherRowsOp({ x: a, indices: idx }, {});
            const h = tf.sin(rows);
            const out = ref ? scatterRowsOp.reference({ x: h, indices: idx, weights: p }, { numRows: nT }) : moeUnpermute(h, idx, { numTokens: nT, probs: p });
            return tf.sum(tf.mul(out, w));
          };
          const x = T(hx);
          const p = T(hp);
          return [f(x, p), ...tf.grads(f)([x, p])];
        };
        const { want, got } = await both(backend, all(true), all(false));
        expectClose(got, want, 1e-5);
      }
    });

    it('moePermute builds its plan from host values: read in place on the CPU backends, passed as a plan on a GPU', async () => {
      await tf.setBackend(backend);
      const map = tf.tensor2d([1, 0, 1, 1, 0, 1, 1, 0], [4, 2]);
      const probs = tf.tensor2d([0.6, 0, 0.5, 0.5, 0, 0.9, 0.7, 0], [4, 2]);
      const tokens = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
      const plan = planPermutation(await map.data(), 4, 2, {}, await probs.data());
      const r = moePermute(tokens, map, { probs, plan });
      expect(Array.from(await r.permuted.data())).toEqual([1, 2, 3, 4, 7, 8, 3, 4, 5, 6]);
      expect(Array.from(await r.permutedProbs!.data())).toEqual(Array.from(Float32Array.from([0.6, 0.5, 0.7, 0.5, 0.9])));
      const onDevice = backend === 'webgpu';
      if (onDevice) expect(() => moePermute(tokens, tf.add(map, 0), { probs })).toThrow(/'routingMap' \[4, 2\] is on the webgpu device; pass 'plan'/);
      else expect(moePermute(tokens, map, { probs }).plan).toEqual(plan);
      tf.dispose([map, probs, tokens, r.permuted, r.sortedIndices, r.permutedProbs!]);
    });

    // zero rows on the CPU-memory backends only (tfjs's webgpu backend cannot bind empty buffers)
    it.each([[5, 3], [1, 16], [33, 40], ...(backend === 'webgpu' ? [] : [[0, 4]])])('swiglu: [%i, 2·%i] forward and gradient (fused swigluGrad) match the reference', async (rows, F) => {
      const hh = normal([rows, 2 * F], 70 + F, 0, 3);
      const hd = normal([rows, F], 71 + F);
      const all = (ref: boolean) => () => {
        const f = (h: Tensor) => tf.sum(tf.mul(ref ? swigluOp.reference({ h }, {}) : swigluOp({ h }, {}), T(hd)));
        const h = T(hh);
        return [ref ? swigluOp.reference({ h }, {}) : swigluOp({ h }, {}), ...tf.grads(f)([h])];
      };
      const { want, got } = await both(backend, all(true), all(false));
      expectClose(got, want, 1e-5);
    });

    it.each([
      ['e4m3', E4M3],
      ['e5m2', E5M2],
    ] as const)('castFp8 %s: every code, every midpoint, scaled and stochastic values match the reference exactly', async (format, f) => {
      const vals: number[] = [];
      for (let code = 0; code < 256; code++) {
        const v = decodeMiniFloat(code, f);
        if (Number.isFinite(v)) vals.push(v);
      }
      const sorted = [...new Set(vals)].sort((a, b) => a - b);
      for (let i = 0; i + 1 < sorted.length; i++) vals.push((sorted[i]! + sorted[i + 1]!) / 2);
      vals.push(f.max * 2, -f.max * 2);
      const grid: Host = { shape: [vals.length], data: Float32Array.from(vals) };
      const rand = normal([257], 5, 0, 3);
      const all = (ref: boolean) => () => {
        const op = ref ? castFp8Op.reference : castFp8Op;
        return [
          op({ x: T(grid), scale: tf.tensor([1]) }, { format }),
          op({ x: T(rand), scale: tf.tensor([37.5]) }, { format }),
          op({ x: T(rand), scale: tf.tensor([37.5]) }, { format, stochastic: true, seed: 3 }),
        ];
      };
      const { want, got } = await both(backend, all(true), all(false));
      expect(got).toEqual(want);
    });
  });
}
