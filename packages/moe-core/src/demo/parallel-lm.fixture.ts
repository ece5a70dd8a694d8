// Rank programs used by parallel-lm.test.ts (loaded inside worker threads).
import type { RankContext } from '../comm/run-ranks.js';
import { type MoeLmTrainConfig, trainMoeLm } from './train.js';

export interface ParallelTrainArgs {
  /** Trained one after the other on the same ranks (one worker start-up for all). */
  configs: Partial<MoeLmTrainConfig>[];
}

export interface ParallelTrainResult {
  rank: number;
  losses: number[];
  expertLoad: number[][];
  auxLoss: number[];
  /** The model's weights after training (experts gathered), by checkpoint name. */
  weights: Record<string, number[]>;
}

/** trainMoeLm over the worker-thread world with each config's context/expert-parallel sizes. */
export async function parallelTrainProgram({ rank, comm }: RankContext, args: ParallelTrainArgs): Promise<ParallelTrainResult[]> {
  const out: ParallelTrainResult[] = [];
  for (const config of args.configs) {
    const result = await trainMoeLm(config, { dataParallel: comm });
    const weights: Record<string, number[]> = {};
    for (const [name, v] of Object.entries(result.model.namedTensors())) weights[name] = Array.from(v.dataSync());
    out.push({
      rank,
      losses: result.reports.map((r) => r.loss),
      expertLoad: result.reports.at(-1)!.expertLoad,
      auxLoss: result.reports.map((r) => r.routerLosses[0]?.aux_loss ?? r.routerLosses[0]?.seq_aux_loss ?? 0),
      weights,
    });
  }
  return out;
}
