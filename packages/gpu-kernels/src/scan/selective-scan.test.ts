import { createRng, initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr } from '../test-utils.js';
import { type SelectiveScanArgs, selectiveScan, selectiveScanOp } from './selective-scan.js';

type Tensor = tf.Tensor;

interface ScanCase {
  batch: number;
  dim: number;
  N: number;
  L: number;
  D?: boolean;
  z?: boolean;
  bias?: boolean;
  softplus?: boolean;
  init?: boolean;
}

function makeScanInputs(c: ScanCase, seed: number): SelectiveScanArgs {
  const rng = createRng(seed);
  const args: SelectiveScanArgs = {
    u: rng.normal([c.batch, c.dim, c.L]),
    delta: c.softplus ? rng.normal([c.batch, c.dim, c.L], 0, 1) : tf.abs(rng.normal([c.batch, c.dim, c.L], 0, 0.5)),
    // A = −exp(A_log), A_log = log(1..N) as mamba initializes it, jittered.
    A: tf.neg(tf.exp(tf.add(tf.log(tf.tile(tf.reshape(tf.range(1, c.N + 1), [1, c.N]), [c.dim, 1])), rng.normal([c.dim, c.N], 0, 0.1)))),
    B: rng.normal([c.batch, c.N, c.L]),
    C: rng.normal([c.batch, c.N, c.L]),
    deltaSoftplus: Boolean(c.softplus),
  };
  if (c.D) args.D = rng.normal([c.dim]);
  if (c.z) args.z = rng.normal([c.batch, c.dim, c.L]);
  if (c.bias) args.deltaBias = rng.normal([c.dim], 0, 0.5);
  if (c.init) args.initialState = rng.normal([c.batch, c.dim, c.N]);
  return args;
}

const SCAN_CASES: ScanCase[] = [
  { batch: 2, dim: 3, N: 4, L: 9, D: true, z: true, bias: true, softplus: true, init: true },
  { batch: 1, dim: 2, N: 3, L: 1, D: true, z: true, bias: true, softplus: true },
  { batch: 1, dim: 5, N: 1, L: 7 },
  { batch: 3, dim: 1, N: 2, L: 13, z: true, init: true },
  { batch: 2, dim: 2, N: 5, L: 70, D: true, bias: true, softplus: true },
];

const TENSOR_KEYS = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias', 'initialState'] as const;

/** Gradients of Σ out·w1 + Σ lastState·w2 w.r.t. every tensor argument, via `run`. */
function scanGrads(args: SelectiveScanArgs, run: (a: SelectiveScanArgs) => { out: Tensor; lastState: Tensor }, seed: number): Tensor[] {
  const rng = createRng(seed);
  const keys = TENSOR_KEYS.filter((k) => args[k]);
  const w1 = rng.normal(args.u.shape as number[]);
  const w2 = rng.normal([args.u.shape[0]!, args.u.shape[1]!, args.A.shape[1]!]);
  return tf.grads((...xs: Tensor[]) => {
    const a = { ...args } as Record<string, unknown>;
    keys.forEach((k, i) => {
      a[k] = xs[i];
    });
    const { out, lastState } = run(a as unknown as SelectiveScanArgs);
    return tf.add(tf.sum(tf.mul(out, w1)), tf.sum(tf.mul(lastState, w2)));
  })(keys.map((k) => args[k] as Tensor));
}

function referenceRun(a: SelectiveScanArgs): { out: Tensor; lastState: Tensor } {
  const inputs: Record<string, Tensor> = {};
  for (const k of TENSOR_KEYS) if (a[k]) inputs[k] = a[k] as Tensor;
  const [out, lastState] = selectiveScanOp.reference(inputs, { deltaSoftplus: Boolean(a.deltaSoftplus) });
  return { out: out!, lastState: lastState! };
}

describe('selectiveScan on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it('the reference matches a hand-computed two-step scan', () => {
    // dim 1, N 1: h1 = Δ1·B1·u1, h2 = e^{Δ2·A}·h1 + Δ2·B2·u2, y = C·h + D·u.
    const u = tf.tensor([[[1, 2]]]);
    const delta = tf.tensor([[[0.5, 0.25]]]);
    const A = tf.tensor([[-1]]);
    const B = tf.tensor([[[2, 3]]]);
    const C = tf.tensor([[[1, -1]]]);
    const D = tf.tensor([0.5]);
    const h1 = 0.5 * 2 * 1;
    const h2 = Math.exp(-0.25) * h1 + 0.25 * 3 * 2;
    const expected = [h1 + 0.5, -h2 + 1];
    for (const run of [selectiveScan, (a: SelectiveScanArgs) => referenceRun(a).out]) {
      const out = run({ u, delta, A, B, C, D }) as Tensor;
      const got = Array.from(out.dataSync());
      expect(got[0]).toBeCloseTo(expected[0]!, 5);
      expect(got[1]).toBeCloseTo(expected[1]!, 5);
    }
  });

  it.each(SCAN_CASES.map((c, i) => [i, c] as const))('kernel forward matches the reference (case %i)', async (i, c) => {
    const args = makeScanInputs(c, 10 + i);
    expect(selectiveScanOp.hasKernel()).toBe(true);
    const ref = referenceRun(args);
    for (const chunkSize of [1, 3, 64]) {
      const got = selectiveScan({ ...args, chunkSize, returnLastState: true });
      expect(await relErr(got.out, ref.out)).toBeLessThan(1e-5);
      expect(await relErr(got.lastState, ref.lastState)).toBeLessThan(1e-5);
    }
  });

  it.each(SCAN_CASES.map((c, i) => [i, c] as const))('kernel gradients match the reference autodiff (case %i)', async (i, c) => {
    const args = makeScanInputs(c, 20 + i);
    const ref = scanGrads(args, referenceRun, 5);
    for (const chunkSize of [2, 64]) {
      const got = scanGrads(args, (a) => selectiveScan({ ...a, chunkSize, returnLastState: true }), 5);
      expect(got.length).toBe(ref.length);
      for (let k = 0; k < ref.length; k++) expect(await relErr(got[k]!, ref[k]!)).toBeLessThan(2e-4);
    }
  });

  it('matches central finite differences in A (float64 loop)', () => {
    const c: ScanCase = { batch: 1, dim: 2, N: 2, L: 5, D: true, z: true, bias: true, softplus: true };
    const args = makeScanInputs(c, 31);
    const [, , gA] = scanGrads(args, (a) => selectiveScan({ ...a, returnLastState: true }), 6);
    const rng = createRng(6);
    const w1 = rng.normal([1, 2, 5]).dataSync();
    const w2 = rng.normal([1, 2, 2]).dataSync();
    const get = (t: Tensor | undefined) => Array.from(t!.dataSync());
    const [u, dl, A, B, C, D, z, bias] = [args.u, args.delta, args.A, args.B, args.C, args.D, args.z, args.deltaBias].map(get) as number[][];
    const loss = (Av: number[]): number => {
      let total = 0;
      for (let d = 0; d < 2; d++) {
        const h = [0, 0];
        for (let t = 0; t < 5; t++) {
          const r = dl![d * 5 + t]! + bias![d]!;
          const dt = Math.log1p(Math.exp(r));
          let y = D![d]! * u![d * 5 + t]!;
          for (let n = 0; n < 2; n++) {
            h[n] = Math.exp(dt * Av[d * 2 + n]!) * h[n]! + dt * B![n * 5 + t]! * u![d * 5 + t]!;
            y += C![n * 5 + t]! * h[n]!;
          }
          const zz = z![d * 5 + t]!;
          total += w1[d * 5 + t]! * y * (zz / (1 + Math.exp(-zz)));
        }
        total += w2[d * 2]! * h[0]! + w2[d * 2 + 1]! * h[1]!;
      }
      return total;
    };
    const analytic = Array.from(gA!.dataSync());
    A!.forEach((_, i) => {
      const up = [...A!];
      const down = [...A!];
      up[i]! += 1e-4;
      down[i]! -= 1e-4;
      expect(analytic[i]).toBeCloseTo((loss(up) - loss(down)) / 2e-4, 2);
    });
  });

  it('carries state across segments: scanning [x1, x2] equals scanning x2 from x1’s last state', async () => {
    const c: ScanCase = { batch: 2, dim: 3, N: 4, L: 10, D: true, z: true, bias: true, softplus: true };
    const args = makeScanInputs(c, 40);
    const whole = selectiveScan({ ...args, returnLastState: true });
    const part = (t: Tensor | undefined, from: number, len: number) => (t ? tf.slice(t, [0, 0, from], [-1, -1, len]) : undefined);
    const seg = (from: number, len: number, init?: Tensor) => {
      const a: SelectiveScanArgs = { ...args, u: part(args.u, from, len)!, delta: part(args.delta, from, len)!, B: part(args.B, from, len)!, C: part(args.C, from, len)! };
      a.z = part(args.z, from, len);
      if (init) a.initialState = init;
      return selectiveScan({ ...a, returnLastState: true });
    };
    const first = seg(0, 4);
    const second = seg(4, 6, first.lastState);
    expect(await relErr(tf.concat([first.out, second.out], 2), whole.out)).toBeLessThan(1e-5);
    expect(await relErr(second.lastState, whole.lastState)).toBeLessThan(1e-5);
  });

  it('accepts mamba’s grouped layout [batch, 1, N, L] for B and C', async () => {
    const args = makeScanInputs(SCAN_CASES[0]!, 70);
    const flat = selectiveScan({ ...args, returnLastState: false });
    const grouped = selectiveScan({ ...args, B: tf.expandDims(args.B, 1), C: tf.expandDims(args.C, 1), returnLastState: false });
    expect(await relErr(grouped, flat)).toBe(0);
    expect(() => selectiveScan({ ...args, B: tf.zeros([2, 2, 4, 9]) })).toThrow(/'B' \[2, 2, 4, 9\] has 2 groups, which must divide dim=3/);
  });

  describe('mamba’s grouped [batch, G, N, L] and constant [dim, N] layouts of B and C', () => {
    type Layout = 'variable' | { groups: number } | 'constant';
    const LAYOUT_CASES: Array<{ dim: number; b: Layout; c: Layout }> = [
      { dim: 4, b: { groups: 2 }, c: { groups: 2 } },
      { dim: 6, b: { groups: 3 }, c: 'constant' },
      { dim: 3, b: 'constant', c: 'variable' },
      { dim: 4, b: 'constant', c: 'constant' },
      { dim: 6, b: { groups: 2 }, c: { groups: 3 } },
    ];
    const [batch, N, L] = [2, 3, 7];

    function operand(layout: Layout, dim: number, seed: number): Tensor {
      const rng = createRng(seed);
      if (layout === 'variable') return rng.normal([batch, N, L]);
      if (layout === 'constant') return rng.normal([dim, N]);
      return rng.normal([batch, layout.groups, N, L]);
    }

    /** B or C for every channel, [batch, dim, N, L], as mamba's `repeat`/einsum broadcast them. */
    function perChannel(t: Tensor, dim: number): Tensor {
      if (t.rank === 3) return tf.tile(tf.expandDims(t, 1), [1, dim, 1, 1]);
      if (t.rank === 2) return tf.tile(tf.reshape(t, [1, dim, N, 1]), [batch, 1, 1, L]);
      const perGroup = dim / t.shape[1]!;
      return tf.gather(t, tf.tensor1d(Array.from({ length: dim }, (_, d) => Math.floor(d / perGroup)), 'int32'), 1);
    }

    /** mamba's selective_scan_ref with per-channel B, C, as a plain tf composition. */
    function compositeScan(a: SelectiveScanArgs): { out: Tensor; lastState: Tensor } {
      const dim = a.u.shape[1]!;
      let dt = a.deltaBias ? tf.add(a.delta, tf.reshape(a.deltaBias, [dim, 1])) : a.delta;
      if (a.deltaSoftplus) dt = tf.softplus(dt);
      const Bf = perChannel(a.B, dim);
      const Cf = perChannel(a.C, dim);
      let h: Tensor = a.initialState ?? tf.zeros([batch, dim, N]);
      const ys: Tensor[] = [];
      for (let t = 0; t < L; t++) {
        const dtT = tf.slice(dt, [0, 0, t], [-1, -1, 1]); // [b, d, 1]
        const uT = tf.slice(a.u, [0, 0, t], [-1, -1, 1]);
        const bT = tf.reshape(tf.slice(Bf, [0, 0, 0, t], [-1, -1, -1, 1]), [batch, dim, N]);
        const cT = tf.reshape(tf.slice(Cf, [0, 0, 0, t], [-1, -1, -1, 1]), [batch, dim, N]);
        h = tf.add(tf.mul(tf.exp(tf.mul(dtT, tf.expandDims(a.A, 0))), h), tf.mul(tf.mul(dtT, uT), bT));
        ys.push(tf.sum(tf.mul(h, cT), 2));
      }
      let out = tf.stack(ys, 2);
      if (a.D) out = tf.add(out, tf.mul(a.u, tf.reshape(a.D, [dim, 1])));
      if (a.z) out = tf.mul(out, tf.mul(a.z, tf.sigmoid(a.z)));
      return { out, lastState: h };
    }

    it('forward and every gradient equal the per-channel composition', async () => {
      for (const [i, c] of LAYOUT_CASES.entries()) {
        const base = makeScanInputs({ batch, dim: c.dim, N, L, D: true, z: true, bias: true, softplus: true, init: true }, 80 + i);
        const args = { ...base, B: operand(c.b, c.dim, 90 + i), C: operand(c.c, c.dim, 100 + i) };
        const got = selectiveScan({ ...args, returnLastState: true });
        const want = compositeScan(args);
        expect(got.out.shape).toEqual([batch, c.dim, L]);
        expect(await relErr(got.out, want.out), `case ${i} out`).toBeLessThan(1e-5);
        expect(await relErr(got.lastState, want.lastState), `case ${i} last state`).toBeLessThan(1e-5);
        const gGot = scanGrads(args, (a) => selectiveScan({ ...a, returnLastState: true }), 7);
        const gWant = scanGrads(args, compositeScan, 7);
        expect(gGot.length).toBe(gWant.length);
        for (let k = 0; k < gWant.length; k++) {
          expect(gGot[k]!.shape, `case ${i} grad ${k}`).toEqual(gWant[k]!.shape);
          expect(await relErr(gGot[k]!, gWant[k]!), `case ${i} grad ${k}`).toBeLessThan(2e-4);
        }
      }
    });

    it('rejects groups that do not divide dim and wrong constant shapes', () => {
      const args = makeScanInputs({ batch, dim: 4, N, L }, 110);
      expect(() => selectiveScan({ ...args, B: tf.zeros([batch, 3, N, L]) })).toThrow(/'B' \[2, 3, 3, 7\] has 3 groups, which must divide dim=4/);
      expect(() => selectiveScan({ ...args, C: tf.zeros([5, N]) })).toThrow(/constant 'C' must have shape \[dim=4, N\], got \[5, 3\]/);
      expect(() => selectiveScan({ ...args, B: tf.zeros([batch, 2, 5, L]) })).toThrow(/'B' must have shape \[2, 3, 7\]/);
    });
  });

  it('returns out alone unless returnLastState is set', () => {
    const args = makeScanInputs(SCAN_CASES[2]!, 50);
    const out = selectiveScan({ ...args, returnLastState: false });
    expect(out.shape).toEqual([1, 5, 7]);
  });

  it('rejects bad shapes and dtypes naming the argument and the shapes', () => {
    const args = makeScanInputs(SCAN_CASES[0]!, 60);
    expect(() => selectiveScan({ ...args, B: tf.zeros([2, 5, 9]) })).toThrow(/'B' must have shape \[2, 4, 9\].*got \[2, 5, 9\]/);
    expect(() => selectiveScan({ ...args, delta: tf.zeros([2, 3, 8]) })).toThrow(/'delta' must have shape \[2, 3, 9\]/);
    expect(() => selectiveScan({ ...args, A: tf.zeros([4, 4]) })).toThrow(/'A' must have shape \[dim=3, N\].*got \[4, 4\]/);
    expect(() => selectiveScan({ ...args, D: tf.zeros([4]) })).toThrow(/'D' must have shape \[3\]/);
    expect(() => selectiveScan({ ...args, z: tf.zeros([2, 3]) })).toThrow(/'z' must have shape \[2, 3, 9\]/);
    expect(() => selectiveScan({ ...args, initialState: tf.zeros([2, 3, 5]) })).toThrow(/'initialState' must have shape \[2, 3, 4\]/);
    expect(() => selectiveScan({ ...args, u: tf.zeros([2, 3, 9], 'int32') })).toThrow(/'u' must be float32, got int32/);
    expect(() => selectiveScan({ ...args, u: tf.zeros([6, 9]) })).toThrow(/'u' must have rank 3/);
    expect(() => selectiveScan({ ...args, u: tf.zeros([2, 3, 0]), delta: tf.zeros([2, 3, 0]), B: tf.zeros([2, 4, 0]), C: tf.zeros([2, 4, 0]), z: undefined })).toThrow(/'u' \[2, 3, 0\] must have batch, dim and L of at least 1/);
    expect(() => selectiveScan({ ...args, chunkSize: 0 })).toThrow(/'chunkSize' must be a positive integer/);
  });
});
