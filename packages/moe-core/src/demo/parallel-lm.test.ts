import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { LocalCommunicator } from '../comm/communicator.js';
import { runRanks } from '../comm/run-ranks.js';
import { contextParallelPositions, contextParallelSpans, shardSequence } from './context-parallel.js';
import { MoeLm, attentionResidual } from './moe-lm.js';
import { ParallelLmStep, RouterCountExchange } from './parallel-lm.js';
import type { ParallelTrainArgs, ParallelTrainResult } from './parallel-lm.fixture.js';
import { MOE_LM_PRESETS, type MoeLmTrainConfig, trainMoeLm } from './train.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('load-balanced context-parallel chunks (Megatron get_batch_on_this_cp_rank)', () => {
  it('rank r keeps chunks r and 2cp−1−r of the sequence', () => {
    expect(Array.from(contextParallelPositions(8, 2, 0))).toEqual([0, 1, 6, 7]);
    expect(Array.from(contextParallelPositions(8, 2, 1))).toEqual([2, 3, 4, 5]);
    expect(Array.from(contextParallelPositions(16, 4, 1))).toEqual([2, 3, 12, 13]);
    expect(Array.from(contextParallelPositions(6, 1, 0))).toEqual([0, 1, 2, 3, 4, 5]);
    // every position exactly once over the group
    const all = [0, 1, 2, 3].flatMap((r) => Array.from(contextParallelPositions(16, 4, r))).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(Array.from(shardSequence(Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17]), 2, 8, 2, 1))).toEqual([2, 3, 4, 5, 12, 13, 14, 15]);
    expect(() => contextParallelPositions(12, 4, 0)).toThrow(/divisible by 2·cp = 8/);
    expect(() => contextParallelPositions(8, 2, 2)).toThrow(/rank 2 is outside/);
  });

  it('each rank attends over the whole gathered context: its rows equal full causal attention, forward and gradient', () => {
    const [B, S, d, heads] = [2, 16, 8, 2];
    const rng = createRng(3);
    const h = tf.tensor2d(rng.normalArray(B * S * d), [B * S, d]);
    const q = tf.tensor2d(rng.normalArray(B * S * d), [B * S, d]);
    const k = tf.tensor2d(rng.normalArray(B * S * d), [B * S, d]);
    const v = tf.tensor2d(rng.normalArray(B * S * d), [B * S, d]);
    const proj = tf.tensor2d(rng.normalArray(d * d), [d, d]);
    const full = attentionResidual(h, q, k, v, proj, { batch: B, heads, spans: [{ start: 0, length: S, firstPosition: 0 }], keyLength: S }).arraySync() as number[][];
    // gradient of a weighted sum of the full output w.r.t. k, for comparison with the sum over ranks
    const weights = tf.tensor2d(rng.normalArray(B * S * d), [B * S, d]);
    const dkFull = tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(attentionResidual(h, q, kk, v, proj, { batch: B, heads, spans: [{ start: 0, length: S, firstPosition: 0 }], keyLength: S }), weights)))(k).arraySync() as number[][];
    for (const cp of [2, 4]) {
      const dkSum = Array.from({ length: B * S }, () => new Array<number>(d).fill(0));
      for (let r = 0; r < cp; r++) {
        const pos = contextParallelPositions(S, cp, r);
        const rows = Int32Array.from({ length: B * pos.length }, (_, i) => Math.floor(i / pos.length) * S + pos[i % pos.length]!);
        const take = (t: tf.Tensor2D) => tf.gather(t, tf.tensor1d(rows, 'int32'));
        const o = { batch: B, heads, spans: contextParallelSpans(S, cp, r), keyLength: S };
        const local = attentionResidual(take(h), take(q), k, v, proj, o).arraySync() as number[][];
        for (const [i, row] of local.entries()) for (const [j, x] of row.entries()) expect(x).toBeCloseTo(full[rows[i]!]![j]!, 5);
        const dk = tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(attentionResidual(take(h), take(q), kk, v, proj, o), take(weights))))(k).arraySync() as number[][];
        for (const [i, row] of dk.entries()) for (const [j, x] of row.entries()) dkSum[i]![j]! += x;
      }
      for (const [i, row] of dkSum.entries()) for (const [j, x] of row.entries()) expect(x).toBeCloseTo(dkFull[i]![j]!, 4);
    }
  });
});

const TINY = MOE_LM_PRESETS.tiny;
/** Two blocks with shared experts, aux and z losses on, context 16 (divisible by 2·4). */
const BASE_MOE = { ...TINY.moe, sharedExpertSize: 16, auxLossCoeff: 1e-2, zLossCoeff: 1e-3 };
const BASE: Partial<MoeLmTrainConfig> = {
  ...TINY,
  layers: 2,
  context: 16,
  batch: 4,
  steps: 3,
  evalEvery: 0,
  moe: BASE_MOE,
};

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  expect(a.length, what).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  if (process.env.KILN_SHOW_DIFFS) console.log(`max abs diff ${what}: ${worst.toExponential(2)}`);
  expect(worst, what).toBeLessThan(tol);
}

describe('the staged LM step', () => {
  it('on one rank (cp 1, ep 1) takes the same Adam steps as tfjs autodiff of the whole model, leaking no tensors', async () => {
    const config = { ...TINY, layers: 2, context: 16, batch: 2, moe: { ...TINY.moe, sharedExpertSize: 16, zLossCoeff: 1e-3 } };
    const reference = new MoeLm(config, createRng(9));
    const staged = new MoeLm(config, createRng(9));
    const step = await ParallelLmStep.create(staged, new LocalCommunicator(), { cp: 1, ep: 1 });
    const optA = tf.train.adam(1e-2);
    const optB = tf.train.adam(1e-2);
    const rng = createRng(4);
    const live: number[] = [];
    for (let i = 0; i < 3; i++) {
      const x = Int32Array.from({ length: 2 * 16 }, () => rng.int(0, 256));
      const y = Int32Array.from({ length: 2 * 16 }, () => rng.int(0, 256));
      const lossA = optA.minimize(() => reference.loss(tf.tensor2d(x, [2, 16], 'int32'), tf.tensor2d(y, [2, 16], 'int32')), true, reference.trainableVariables())!.dataSync()[0]!;
      const before = tf.memory().numTensors;
      const r = await step.step(x, y, 2, 16, optB);
      live.push(tf.memory().numTensors - before);
      expect(r.loss).toBeCloseTo(lossA, 5);
      expect(Array.from(r.tokensPerExpert[0]!)).toEqual(Array.from(reference.blocks[0]!.moe.stats.tokensPerExpert));
    }
    // the first step creates Adam's slots; later steps leave no tensors behind
    expect(live.slice(1)).toEqual([0, 0]);
    const a = reference.namedTensors();
    const b = staged.namedTensors();
    for (const name of Object.keys(a)) expectClose(b[name]!.dataSync(), a[name]!.dataSync(), 2e-5, name);
  }, 60_000);

  it('fails loudly when the routing differs from the probed counts', async () => {
    const exchange = new RouterCountExchange(new LocalCommunicator());
    const reduce = exchange.collectives.allReduceTpCp!;
    await exchange.exchange(() => {
      reduce(Float32Array.from([1, 2]));
    });
    expect(Array.from(reduce(Float32Array.from([1, 2])))).toEqual([1, 2]);
    expect(() => reduce(Float32Array.from([2, 1]))).toThrow(/differs from the probe/);
  });

  it('refuses layouts that do not fit, naming them', async () => {
    await expect(trainMoeLm({ ...BASE, contextParallel: 2 })).rejects.toThrow(/1 ranks do not divide into context-parallel groups of 2/);
    await expect(trainMoeLm({ ...BASE, context: 12, contextParallel: 4 })).rejects.toThrow(/config.context \(12\) must be divisible by 2·contextParallel = 8/);
    await expect(trainMoeLm({ ...BASE, contextParallel: 0 })).rejects.toThrow(/config.contextParallel must be a positive integer/);
  });
});

const fixture = new URL('./parallel-lm.fixture.ts', import.meta.url).href;

describe('context parallelism on worker threads equals one process (loss curve and final weights)', () => {
  type Reference = { losses: number[]; weights: Record<string, number[]>; auxLoss: number[]; load: number[][] };
  const references = new Map<string, Promise<Reference>>();
  /** The single-process run of a config (computed once per config). */
  const referenceOf = (config: Partial<MoeLmTrainConfig>) => {
    const key = JSON.stringify(config);
    if (!references.has(key)) {
      references.set(
        key,
        trainMoeLm(config).then((r) => {
          const weights: Record<string, number[]> = {};
          for (const [name, v] of Object.entries(r.model.namedTensors())) weights[name] = Array.from(v.dataSync());
          return { losses: r.reports.map((x) => x.loss), weights, auxLoss: r.reports.map((x) => x.routerLosses[0]!.aux_loss ?? x.routerLosses[0]!.seq_aux_loss ?? 0), load: r.reports.at(-1)!.expertLoad };
        }),
      );
    }
    return references.get(key)!;
  };
  // With dp > 1 every data-parallel replica has an aux loss of its own (Megatron's
  // per-micro-batch aux loss), which differs from one process's on the whole batch: that case
  // runs without it. Without dp the aux loss is reduced over the CP group and matches.
  const noAux: Partial<MoeLmTrainConfig> = { ...BASE, moe: { ...BASE_MOE, auxLossCoeff: 0 } };
  // each group of layouts shares one start of its worker threads
  const groups: [string, number, Partial<MoeLmTrainConfig>[]][] = [
    [
      'cp 2, cp 2 × ep 2, and cp 2 with the sequence aux loss (2 ranks)',
      2,
      [
        { ...BASE, contextParallel: 2 },
        { ...BASE, contextParallel: 2, expertParallel: 2 },
        // every sequence's counts summed over its CP ranks; rows batch-major on each rank
        { ...BASE, moe: { ...BASE_MOE, routerLoadBalancingType: 'seq_aux_loss' }, contextParallel: 2 },
      ],
    ],
    [
      'cp 4, cp 4 × ep 2, and cp 2 × dp 2 with ep 4 (one expert per rank, no aux loss) (4 ranks)',
      4,
      [
        { ...BASE, contextParallel: 4 },
        { ...BASE, contextParallel: 4, expertParallel: 2 },
        { ...noAux, contextParallel: 2, expertParallel: 4 },
      ],
    ],
  ];
  it.each(groups)('%s', async (_, ranks, configs) => {
    const results = await runRanks<ParallelTrainArgs, ParallelTrainResult[]>(ranks, 'parallelTrainProgram', { configs }, { module: fixture, backend: 'cpu', timeoutMs: 120_000 });
    for (const [i, config] of configs.entries()) {
      const { contextParallel: cp, expertParallel: ep, ...single } = config;
      const reference = await referenceOf(single);
      for (const perRank of results) {
        const r = perRank[i]!;
        const what = `cp ${cp} ep ${ep ?? 1} rank ${r.rank}`;
        expectClose(r.losses, reference.losses, 1e-5, `${what} losses`);
        expectClose(r.auxLoss, reference.auxLoss, 1e-6, `${what} aux loss`);
        expectClose(r.expertLoad.flat(), reference.load.flat(), 1e-6, `${what} expert load`);
        for (const name of Object.keys(reference.weights)) expectClose(r.weights[name]!, reference.weights[name]!, 5e-5, `${what} ${name}`);
      }
    }
  }, 480_000);
});
