import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRanks } from '../comm/run-ranks.js';
import { type MoEConfigInput, validateMoEConfig } from '../config.js';
import type { Communicator } from '../comm/communicator.js';
import type { ExpertParallelProgramArgs, ExpertParallelProgramResult } from './ep-program.js';
import { ExpertParallelMoE } from './expert-parallel.js';
import { MoELayer } from './moe-layer.js';
import { initMoEWeights } from './weights.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const T = 24;
const H = 8;
const base: MoEConfigInput = { numExperts: 8, topk: 2, hiddenSize: H, ffnHiddenSize: 6, sharedExpertSize: 4, sharedExpertGate: true };
const tokens = createRng(31).normalArray(T * H);
const dOutput = createRng(32).normalArray(T * H);

/** One process, all experts, tfjs autodiff end to end: the reference. */
function singleProcess(config: MoEConfigInput) {
  const c = validateMoEConfig(config);
  const w = initMoEWeights(c, createRng(7), { std: 0.3 });
  const layer = new MoELayer(c, w);
  const x = tf.tensor2d(tokens, [T, H]);
  const dy = tf.tensor2d(dOutput, [T, H]);
  const names = ['router', 'fc1', 'fc2', 'sharedFc1', 'sharedFc2', 'sharedGate'] as const;
  const vars = names.map((n) => w[n]!);
  const f = (...xs: tf.Tensor[]) => {
    const l = new MoELayer(c, { ...w, router: xs[1] as tf.Variable, fc1: xs[2] as tf.Variable, fc2: xs[3] as tf.Variable, sharedFc1: xs[4] as tf.Variable, sharedFc2: xs[5] as tf.Variable, sharedGate: xs[6] as tf.Variable });
    return tf.sum(tf.mul(l.forward(xs[0] as tf.Tensor2D), dy)) as tf.Scalar;
  };
  const g = tf.grads(f)([x, ...vars]);
  const grads: Record<string, Float32Array> = {};
  names.forEach((n, i) => {
    grads[n] = g[i + 1]!.dataSync() as Float32Array;
  });
  return { output: layer.forward(x).dataSync() as Float32Array, dHidden: g[0]!.dataSync() as Float32Array, grads };
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  expect(a.length, what).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1e-4 + Math.abs(b[i]!)));
  expect(worst, what).toBeLessThan(2e-4);
}

function concat(parts: Float32Array[]) {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The full [E, H, F₁] / [E, F, H] expert gradients from the ranks' slices: rank e·etp + t holds
 * experts [e·L, (e+1)·L) and FFN slice t (fc1: gate and up columns of the slice; fc2: its rows).
 */
function assembleExpertGrads(results: ExpertParallelProgramResult[], ep: number, etp: number) {
  const L = 8 / ep;
  const F = 6;
  const Fs = F / etp;
  const fc1 = new Float32Array(8 * H * 2 * F);
  const fc2 = new Float32Array(8 * F * H);
  results.forEach((r, rank) => {
    const e0 = Math.floor(rank / etp) * L;
    const t = rank % etp;
    const g1 = r.grads.fc1!.data;
    const g2 = r.grads.fc2!.data;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < Fs; j++) {
          const row = ((e0 + l) * H + h) * 2 * F;
          fc1[row + t * Fs + j] = g1[(l * H + h) * 2 * Fs + j]!;
          fc1[row + F + t * Fs + j] = g1[(l * H + h) * 2 * Fs + Fs + j]!;
        }
      }
      for (let j = 0; j < Fs; j++) for (let h = 0; h < H; h++) fc2[((e0 + l) * F + t * Fs + j) * H + h] = g2[(l * Fs + j) * H + h]!;
    }
  });
  return { fc1, fc2 };
}

async function expertParallel(ep: number, config: MoEConfigInput, etp = 1) {
  const args: ExpertParallelProgramArgs = { config: { ...config, etp }, seed: 7, std: 0.3, tokens, dOutput };
  const results = await runRanks<ExpertParallelProgramArgs, ExpertParallelProgramResult>(ep * etp, 'expertParallelProgram', args, { backend: 'cpu' });
  return {
    output: concat(results.map((r) => r.output)),
    dHidden: concat(results.map((r) => r.dHidden)),
    grads: {
      ...Object.fromEntries(['router', 'sharedFc1', 'sharedFc2', 'sharedGate'].map((n) => [n, results[0]!.grads[n]!.data])),
      ...assembleExpertGrads(results, ep, etp),
    } as Record<string, Float32Array>,
    results,
  };
}

describe('expert parallelism over worker threads', () => {
  const cases: [string, MoEConfigInput, number[]][] = [
    ['all-to-all, shared experts overlapped', { ...base, tokenDispatcherType: 'alltoall', sharedExpertOverlap: true }, [1, 2, 4]],
    ['all-gather', { ...base, tokenDispatcherType: 'allgather' }, [2, 4]],
  ];
  for (const [name, config, sizes] of cases) {
    it(`${name}: EP ${sizes.join(', ')} give the single-process outputs and gradients`, async () => {
      const ref = singleProcess(config);
      for (const ep of sizes) {
        const got = await expertParallel(ep, config);
        close(got.output, ref.output, `output, EP ${ep}`);
        close(got.dHidden, ref.dHidden, `d hidden, EP ${ep}`);
        for (const n of Object.keys(ref.grads)) close(got.grads[n]!, ref.grads[n]!, `d ${n}, EP ${ep}`);
        const routed = got.results.reduce((a, r) => a + r.tokensPerExpert.reduce((x, y) => x + y, 0), 0);
        expect(routed).toBe(T * 2);
        const phases = Object.keys(got.results[0]!.timings);
        for (const p of ['dispatchPreprocess', 'tokenDispatch', 'dispatchPostprocess', 'combinePreprocess', 'tokenCombine', 'combinePostprocess']) expect(phases).toContain(p);
      }
    }, 120_000);
  }

  it('expert tensor parallelism: ETP 2 with EP 1 and EP 2 (fc1 column-, fc2 row-parallel, partial outputs reduced) gives the ETP 1 outputs and gradients', async () => {
    const config: MoEConfigInput = { ...base, tokenDispatcherType: 'alltoall', sharedExpertOverlap: true };
    const ref = singleProcess(config);
    for (const [ep, etp, dispatcher] of [
      [1, 2, 'alltoall'],
      [2, 2, 'alltoall'],
      [2, 2, 'allgather'],
    ] as const) {
      const got = await expertParallel(ep, { ...config, tokenDispatcherType: dispatcher, sharedExpertOverlap: dispatcher === 'alltoall' }, etp);
      const what = `EP ${ep} ETP ${etp} ${dispatcher}`;
      expect(got.results).toHaveLength(ep * etp);
      expect(got.results[0]!.grads.fc1!.shape).toEqual([8 / ep, H, (2 * 6) / etp]);
      expect(got.results[0]!.grads.fc2!.shape).toEqual([8 / ep, 6 / etp, H]);
      close(got.output, ref.output, `output, ${what}`);
      close(got.dHidden, ref.dHidden, `d hidden, ${what}`);
      for (const n of Object.keys(ref.grads)) close(got.grads[n]!, ref.grads[n]!, `d ${n}, ${what}`);
      expect(Object.keys(got.results[0]!.timings)).toEqual(expect.arrayContaining(['etpAllGather', 'experts', 'etpReduceScatter']));
    }
  }, 120_000);
});

describe('shared-expert overlap', () => {
  /** A one-rank group whose all-to-all takes 30 ms, logging when each one is in flight. */
  function slowCommunicator(log: { what: string; start: number; end: number }[]): Communicator {
    return {
      rank: 0,
      size: 1,
      allGather: async (d) => [d],
      allReduce: async (d) => d,
      barrier: async () => undefined,
      allToAllV: async (chunks) => {
        const start = performance.now();
        await new Promise((r) => setTimeout(r, 30));
        log.push({ what: 'allToAll', start, end: performance.now() });
        return chunks.map((c) => Float32Array.from(c));
      },
    };
  }

  for (const overlap of [true, false]) {
    it(`${overlap ? 'hides an all-to-all behind the shared experts in forward and in backward' : 'without overlap runs the shared experts before the dispatch all-to-all'}`, async () => {
      const log: { what: string; start: number; end: number }[] = [];
      const config = validateMoEConfig({ ...base, tokenDispatcherType: 'alltoall', sharedExpertOverlap: overlap });
      const layer = new ExpertParallelMoE(config, initMoEWeights(config, createRng(7), { std: 0.3 }), slowCommunicator(log));
      const shared = layer.shared!;
      const run = shared.forward.bind(shared);
      shared.forward = (...args) => {
        const start = performance.now();
        const out = run(...args);
        log.push({ what: 'shared', start, end: performance.now() });
        return out;
      };
      const pass = await layer.forward(tf.tensor2d(tokens, [T, H]));
      const forwardLog = log.length;
      await pass.backward(tf.tensor2d(dOutput, [T, H]));
      const inFlight = (s: { start: number; end: number }) => log.some((c) => c.what === 'allToAll' && c.start <= s.start && s.end <= c.end);
      const sharedRuns = log.filter((e) => e.what === 'shared');
      // forward: one shared run; backward: its re-run under a fresh tape for the vector–Jacobian product
      expect(sharedRuns).toHaveLength(2);
      const [fwd, bwd] = [sharedRuns.find((e) => log.indexOf(e) < forwardLog)!, sharedRuns.find((e) => log.indexOf(e) >= forwardLog)!];
      expect(inFlight(fwd)).toBe(overlap);
      if (overlap) expect(inFlight(bwd)).toBe(true);
    });
  }
});
