/**
 * Layout search: every Parallel-Folding layout of a model on N GPUs (tp, cp, pp, vp, ep,
 * micro-batch size, and the least recomputation that makes it fit), kept when the memory
 * estimate fits the GPU, ranked by the performance model's throughput.
 */
import { type MemoryEstimate, type MoEModelSpec, memoryPerGpu } from './estimator.js';
import type { GpuSpec, Precision } from './gpus.js';
import { DEFAULT_EFFICIENCY, type Efficiency, type PerformanceEstimate, type TrainingRecompute, type TrainingLayout, estimatePerformance } from './performance.js';

export interface PlanOptions {
  gpus: number;
  gpu: GpuSpec;
  precision: Precision;
  seqLength: number;
  globalBatchSize: number;
  /** Fraction of HBM a plan may use (the rest: framework workspace, fragmentation). Default 0.9. */
  memoryFraction?: number;
  overlapExpertComm?: boolean;
  /** How many plans to return. Default 10. */
  top?: number;
  efficiency?: Efficiency;
}

export interface Plan {
  layout: Required<TrainingLayout>;
  microBatchSize: number;
  recompute: TrainingRecompute[];
  memory: MemoryEstimate;
  performance: PerformanceEstimate;
}

/** Recomputation levels, cheapest first: none, the experts (activation and MLP), everything. */
const RECOMPUTE_LEVELS: { modules: TrainingRecompute[]; experts: boolean; full: boolean }[] = [
  { modules: [], experts: false, full: false },
  { modules: ['moe'], experts: true, full: false },
  { modules: ['full'], experts: true, full: true },
];

/**
 * Micro-batches whose activations the first pipeline stage holds: pp under 1F1B (at most the
 * micro-batches there are), pp·(1 + (pp − 1)/(pp·vp)) with interleaving.
 */
export function inflightMicroBatches(pp: number, vp: number, microBatches = Number.POSITIVE_INFINITY): number {
  return Math.min(microBatches, pp) * (vp > 1 ? 1 + (pp - 1) / (pp * vp) : 1);
}

const powersOfTwo = (max: number) => {
  const out: number[] = [];
  for (let v = 1; v <= max; v *= 2) out.push(v);
  return out;
};

/** The layouts that fit, fastest first (at most `top`). */
export function planLayouts(spec: MoEModelSpec, options: PlanOptions): Plan[] {
  const { gpus: world, gpu, seqLength, globalBatchSize: gbs } = options;
  if (!(Number.isInteger(world) && world >= 1)) throw new Error(`gpus must be a positive integer, got ${world}`);
  if (!(Number.isInteger(gbs) && gbs >= 1)) throw new Error(`globalBatchSize must be a positive integer, got ${gbs}`);
  const budget = gpu.hbmBytes * (options.memoryFraction ?? 0.9);
  const layers = spec.numLayers + (spec.mtpLayers ?? 0);
  const heads = spec.attention.numHeads;
  const plans: Plan[] = [];
  for (const tp of powersOfTwo(Math.min(8, gpu.nvlinkDomain))) {
    if (heads % tp !== 0) continue;
    for (const cp of powersOfTwo(8)) {
      if (cp > 1 && seqLength % (2 * cp) !== 0) continue;
      for (const pp of powersOfTwo(Math.min(32, layers))) {
        if (world % (tp * cp * pp) !== 0) continue;
        const dp = world / (tp * cp * pp);
        for (const vp of powersOfTwo(8)) {
          if (vp > 1 && (pp === 1 || pp * vp > layers)) continue;
          for (const ep of powersOfTwo(spec.numExperts)) {
            if (spec.numExperts % ep !== 0 || world % (ep * pp) !== 0) continue;
            for (const mbs of [1, 2, 4]) {
              if (gbs % (mbs * dp) !== 0) continue;
              const layout: Required<TrainingLayout> = { tp, cp, pp, vp, ep, etp: 1, dp };
              const microBatches = gbs / (mbs * dp);
              const inflight = inflightMicroBatches(pp, vp, microBatches);
              for (const level of RECOMPUTE_LEVELS) {
                const memory = memoryPerGpu(spec, layout, {
                  microBatchSize: mbs,
                  seqLength,
                  inflightMicroBatches: inflight,
                  recomputeExperts: level.experts,
                  recomputeFull: level.full,
                });
                if (memory.totalBytes > budget) continue;
                const performance = estimatePerformance(
                  { spec, layout, gpu, precision: options.precision, seqLength, microBatchSize: mbs, globalBatchSize: gbs, recompute: level.modules, overlapExpertComm: options.overlapExpertComm },
                  options.efficiency ?? DEFAULT_EFFICIENCY,
                );
                plans.push({ layout, microBatchSize: mbs, recompute: level.modules, memory, performance });
                break; // the cheapest recomputation that fits
              }
            }
          }
        }
      }
    }
  }
  plans.sort((a, b) => b.performance.tokensPerSecond - a.performance.tokensPerSecond);
  return plans.slice(0, options.top ?? 10);
}
