import { createRng, tf } from '@kiln/tensor';
import type { RankContext } from '../comm/run-ranks.js';
import { type MoEConfigInput, validateMoEConfig } from '../config.js';
import { ExpertParallelMoE, withExpertParallel } from './expert-parallel.js';
import { initMoEWeights } from './weights.js';

/** Arguments of `expertParallelProgram` (plain data: it crosses into worker threads). */
export interface ExpertParallelProgramArgs {
  config: MoEConfigInput;
  /** Weight-initialisation seed and std (every rank draws all experts, keeps its own). */
  seed: number;
  std?: number;
  /** All tokens [T, H] row-major; rank r takes the r-th of `size` contiguous shards. */
  tokens: Float32Array;
  /** Cotangent of the output for all tokens, same layout. */
  dOutput: Float32Array;
  /** Forward+backward passes to time (the last one's values are returned). Default 1. */
  repeats?: number;
}

export interface ExpertParallelProgramResult {
  rank: number;
  output: Float32Array;
  dHidden: Float32Array;
  /** Router / shared grads summed over ranks (the DP all-reduce); expert grads of local experts (this rank's ETP slice). */
  grads: Record<string, { shape: number[]; data: Float32Array }>;
  tokensPerExpert: Float32Array;
  timings: Record<string, { forwardMs: number; backwardMs: number }>;
  stepMs: number;
}

/** Rank r's shard [start, end) of T tokens split as evenly as possible over `size` ranks. */
export function tokenShard(T: number, size: number, rank: number): [number, number] {
  const base = Math.floor(T / size);
  const extra = T % size;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

/**
 * A rank program (for `runRanks`): builds this rank's share of an MoE layer, runs forward and
 * backward on its token shard through the configured token dispatcher, all-reduces the
 * replicated weights' gradients, and returns everything as host arrays.
 */
export async function expertParallelProgram({ rank, size, comm }: RankContext, args: ExpertParallelProgramArgs): Promise<ExpertParallelProgramResult> {
  const config = validateMoEConfig(withExpertParallel(args.config, size));
  const H = config.hiddenSize;
  const T = args.tokens.length / H;
  const L = config.numExperts / config.ep;
  // etp fastest: rank = epRank·etp + etpRank (expertGroups)
  const epRank = Math.floor(rank / config.etp);
  const weights = initMoEWeights(config, createRng(args.seed), {
    std: args.std,
    firstExpert: epRank * L,
    numLocalExperts: L,
    etpRank: rank % config.etp,
    etpSize: config.etp,
  });
  const layer = await ExpertParallelMoE.create(config, weights, comm);
  const [s, e] = tokenShard(T, size, rank);
  const hidden = tf.tensor2d(args.tokens.slice(s * H, e * H), [e - s, H]);
  const dOut = tf.tensor2d(args.dOutput.slice(s * H, e * H), [e - s, H]);
  let result: ExpertParallelProgramResult | null = null;
  for (let rep = 0; rep < (args.repeats ?? 1); rep++) {
    await comm.barrier();
    const t0 = performance.now();
    const pass = await layer.forward(hidden);
    const g = await pass.backward(dOut);
    const stepMs = performance.now() - t0;
    const grads: ExpertParallelProgramResult['grads'] = {};
    for (const [name, t] of Object.entries(g!)) {
      if (name === 'hidden') continue;
      let data = (await t.data()) as Float32Array;
      if (name !== 'fc1' && name !== 'fc2') data = await comm.allReduce(data);
      grads[name] = { shape: t.shape, data: Float32Array.from(data) };
    }
    result = {
      rank,
      output: Float32Array.from((await pass.output.data()) as Float32Array),
      dHidden: Float32Array.from((await g!.hidden.data()) as Float32Array),
      grads,
      tokensPerExpert: pass.stats.tokensPerExpert,
      timings: pass.timings,
      stepMs,
    };
  }
  return result!;
}
