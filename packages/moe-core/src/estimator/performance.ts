/**
 * Step time of MoE training on a GPU cluster: a per-GPU roofline (each kind of work at an
 * achievable fraction of the matching peak) plus a communication model (bytes per GPU over
 * NVLink or the scale-out network, with the overlap each mechanism allows), the pipeline
 * bubble and the optimizer step. It answers "how long does one global batch take, and at
 * how many TFLOPS per GPU" for a model, a parallel layout (Parallel Folding) and a GPU.
 *
 * Every efficiency is an explicit, documented assumption (`DEFAULT_EFFICIENCY`), chosen from
 * public kernel benchmarks, not fitted to any training result. What is not modelled: host and
 * kernel-launch overhead (CUDA graphs assumed), SM time taken by communication kernels while
 * they overlap compute, routing imbalance (benchmarks force-balance the experts), memory
 * fragmentation, and stragglers.
 */
import { type MoEModelSpec, countParams } from './estimator.js';
import { type GpuSpec, type Precision, peakFlops } from './gpus.js';
import { megatronFlopsPerToken } from './model-flops.js';

/** A parallel layout with pipeline interleaving. */
export interface TrainingLayout {
  tp: number;
  pp: number;
  ep: number;
  /** Expert tensor parallel (default 1). */
  etp?: number;
  /** Context parallel (default 1). */
  cp?: number;
  /** Attention data parallel; world = tp·cp·dp·pp. */
  dp: number;
  /** Virtual pipeline stages per GPU (interleaved 1F1B; default 1). */
  vp?: number;
}

/** Modules whose forward is recomputed in backward (Megatron's --recompute-modules, plus 'full'). */
export type TrainingRecompute = 'core_attn' | 'mla_up_proj' | 'moe_act' | 'layernorm' | 'mlp' | 'moe' | 'shared_experts' | 'full';
export const TRAINING_RECOMPUTE: readonly TrainingRecompute[] = ['core_attn', 'mla_up_proj', 'moe_act', 'layernorm', 'mlp', 'moe', 'shared_experts', 'full'];

export interface TrainingRun {
  spec: MoEModelSpec;
  layout: TrainingLayout;
  gpu: GpuSpec;
  /** GEMM precision: bf16, fp8 (FP8 / MXFP8 recipes) or fp4 (NVFP4). Attention and the output layer stay in BF16. */
  precision: Precision;
  seqLength: number;
  microBatchSize: number;
  globalBatchSize: number;
  recompute?: TrainingRecompute[];
  /** EP all-to-all hidden behind another micro-batch's compute (Megatron's 1F1B A2A overlap). Default false. */
  overlapExpertComm?: boolean;
}

/**
 * Achievable fractions of peak. Each is a property of kernels, not of a model:
 * - gemm 0.70: large dense GEMMs in cuBLAS reach about 70 % of the dense tensor-core peak
 *   (e.g. ~700 of 989 BF16 TFLOPS on H100 SXM at 8k-sized operands), in FP8 alike.
 * - groupedGemm 0.60: the experts' grouped GEMM runs ragged per-expert shapes; 10 points
 *   below dense GEMMs, as Transformer Engine's grouped GEMM measures against cuBLAS.
 * - attention 0.50: fused flash attention, forward plus backward, at the BF16 peak
 *   (FlashAttention-3 reaches ~75 % forward and ~50–55 % backward on H100 with head
 *   dimension 128; backward does 2.5× the forward's matmuls).
 * - hbm 0.80: memory-bound kernels (norms, activations, permutation, casts, the optimizer)
 *   at 80 % of the HBM bandwidth, the usual STREAM-like ceiling.
 * - nvlink 0.70: NCCL / NVSHMEM all-to-all over NVLink at 70 % of the per-direction link
 *   bandwidth (all-reduce bus bandwidth reaches ~80 %; all-to-all less).
 * - network 0.80: InfiniBand / RoCE collectives at 80 % of the NIC's line rate.
 */
export interface Efficiency {
  gemm: number;
  groupedGemm: number;
  attention: number;
  hbm: number;
  nvlink: number;
  network: number;
}

export const DEFAULT_EFFICIENCY: Readonly<Efficiency> = Object.freeze({ gemm: 0.7, groupedGemm: 0.6, attention: 0.5, hbm: 0.8, nvlink: 0.7, network: 0.8 });

/** Seconds per global batch on the busiest GPU, by component. */
export interface StepBreakdown {
  denseGemm: number;
  expertGemm: number;
  /** The output layer's GEMM (BF16). */
  logits: number;
  attention: number;
  memoryBound: number;
  /** Extra forward work of the recomputed modules (included in the compute terms above). */
  recompute: number;
  /** Communication, as exposed on the critical path (the full time in `comm`). */
  expertParallel: number;
  tensorParallel: number;
  contextParallel: number;
  pipelineParallel: number;
  dataParallel: number;
  optimizer: number;
  /** Pipeline bubble ((pp − 1)/(vp·micro-batches) of the busiest stage) and stage imbalance. */
  bubble: number;
}

export interface PerformanceEstimate {
  stepSeconds: number;
  tokensPerSecond: number;
  tokensPerSecondPerGpu: number;
  /** Model FLOPs (Megatron's count) per second per GPU, in TFLOP/s. */
  tflopsPerGpu: number;
  /** Model FLOP utilisation against the dense peak of the GEMM precision. */
  mfu: number;
  worldSize: number;
  microBatches: number;
  modelFlopsPerToken: number;
  breakdown: StepBreakdown;
  /** Unhidden communication time per kind, before overlap. */
  comm: { expertParallel: number; tensorParallel: number; contextParallel: number; pipelineParallel: number; dataParallel: number };
}

const BF16 = 2;

/**
 * Memory-bound bytes per token per transformer layer, forward and backward (3× the forward
 * traffic: backward reads and writes about twice what forward does). Counted tensor by
 * tensor in BF16: two RMSNorms (read + write H each), two residual adds (2 reads + 1 write),
 * RoPE on q and k, the GEMM inputs' casts to FP8 (read 2 bytes, write 1), and in MoE layers
 * the permutation (k·H read and written), the weighted un-permutation ((k + 1)·H), the
 * SwiGLU of the routed rows (2F read, F written per row) and of the shared expert.
 */
export function memoryBoundBytesPerToken(spec: MoEModelSpec, moe: boolean, precision: Precision): number {
  const h = spec.hiddenSize;
  const a = spec.attention;
  const rope = a.kind === 'mla' ? a.numHeads * a.qkRopeHeadDim + a.qkRopeHeadDim : (a.numHeads + a.numKvHeads) * a.headDim;
  const attnOut = a.kind === 'mla' ? a.numHeads * a.vHeadDim : a.numHeads * a.headDim;
  let elements = 2 * 2 * h + 2 * 3 * h + 2 * rope;
  // FP8 casts of the attention GEMMs' inputs (q/kv projection input, output projection input)
  let cast = precision === 'bf16' ? 0 : h + attnOut;
  if (moe) {
    const k = spec.topk;
    const f = spec.moeFfnHiddenSize;
    const fs = spec.sharedExpertFfnHiddenSize;
    elements += 2 * k * h + (k + 1) * h + (spec.gatedMlp ? 3 : 2) * k * f + (spec.gatedMlp ? 3 : 2) * fs;
    if (precision !== 'bf16') cast += k * (h + f) + (fs > 0 ? h + fs : 0);
  } else {
    const f = spec.denseFfnHiddenSize;
    elements += (spec.gatedMlp ? 3 : 2) * f;
    if (precision !== 'bf16') cast += h + f;
  }
  return 3 * (elements * BF16 + cast * 1.5 * BF16);
}

/** Bytes per element of a GEMM's inputs in each precision (MXFP8 / NVFP4 scales neglected). */
const GEMM_INPUT_BYTES: Record<Precision, number> = { bf16: 2, fp8: 1, fp4: 0.5 };

/** The [in, out] widths of a model's linear layers, per transformer layer (experts: per expert). */
export interface LinearShapes {
  attention: [number, number][];
  denseMlp: [number, number][];
  sharedExperts: [number, number][];
  expert: [number, number][];
  logits: [number, number][];
}

export function linearShapes(spec: MoEModelSpec): LinearShapes {
  const h = spec.hiddenSize;
  const a = spec.attention;
  const mlp = (f: number): [number, number][] => (f > 0 ? [[h, (spec.gatedMlp ? 2 : 1) * f], [f, h]] : []);
  const attention: [number, number][] =
    a.kind === 'mla'
      ? [
          ...(a.qLoraRank === null
            ? [[h, a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim)] as [number, number]]
            : [[h, a.qLoraRank] as [number, number], [a.qLoraRank, a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim)] as [number, number]]),
          [h, a.kvLoraRank + a.qkRopeHeadDim],
          [a.kvLoraRank, a.numHeads * (a.qkNopeHeadDim + a.vHeadDim)],
          [a.numHeads * a.vHeadDim, h],
        ]
      : [
          [h, (a.numHeads + 2 * a.numKvHeads) * a.headDim],
          [a.numHeads * a.headDim, h],
        ];
  return { attention, denseMlp: mlp(spec.denseFfnHiddenSize), sharedExperts: mlp(spec.sharedExpertFfnHiddenSize), expert: mlp(spec.moeFfnHiddenSize), logits: [[h, spec.vocabSize]] };
}

/**
 * HBM bytes of one training pass (forward, data gradient, weight gradient) of `copies` linear
 * layers of the given shapes over `rows` rows, their weights split `split` ways: the weights
 * are read twice in the GEMM precision and their FP32 main gradient read and written once
 * (gradient-accumulation fusion); each row's input and output are read or written about
 * three times in the GEMM precision plus once in BF16.
 */
export function linearPassBytes(shapes: [number, number][], rows: number, split: number, inBytes: number, copies = 1): number {
  let bytes = 0;
  for (const [k, n] of shapes) bytes += copies * ((k * n) / split) * (2 * inBytes + 8) + rows * ((k + n) / split) * (3 * inBytes + BF16);
  return bytes;
}

/** Seconds to move `bytes` per GPU within a group spanning `span` consecutive ranks (NVLink inside a domain, the network beyond). */
function transferSeconds(bytes: number, span: number, gpu: GpuSpec, eff: Efficiency): number {
  if (bytes <= 0) return 0;
  if (span <= gpu.nvlinkDomain) return bytes / (gpu.nvlinkBandwidth * eff.nvlink);
  // the share of peers outside the domain goes over the NIC, the rest over NVLink, concurrently
  const outside = 1 - gpu.nvlinkDomain / span;
  return Math.max((bytes * outside) / (gpu.networkBandwidth * eff.network), (bytes * (1 - outside)) / (gpu.nvlinkBandwidth * eff.nvlink));
}

/** Ring all-gather / reduce-scatter bytes each rank sends for a buffer of `bytes` over `n` ranks. */
const ringBytes = (bytes: number, n: number) => (n > 1 ? (bytes * (n - 1)) / n : 0);

/**
 * Expected number of other EP ranks a token is sent to: top-k of E experts spread evenly over
 * ep ranks, a token going once to each rank holding at least one of its experts (DeepEP /
 * HybridEP deduplicate; the plain all-to-all sends k copies, which is at most k/that more).
 */
export function remoteRanksPerToken(numExperts: number, topk: number, ep: number): number {
  if (ep <= 1) return 0;
  const local = numExperts / ep;
  // P(a given rank holds none of the token's k experts) = C(E − L, k) / C(E, k)
  let none = 1;
  for (let i = 0; i < topk; i++) none *= (numExperts - local - i) / (numExperts - i);
  return (ep - 1) * (1 - Math.max(0, none));
}

/**
 * Time of the busiest of `pp` pipeline stages: `layers` layers
 * of `layerWork` each, in whole layers per stage, plus `headWork` (the output layer) on the
 * last stage, which holds as few layers as balances it.
 */
export function pipelineMakespan(layers: number, pp: number, layerWork: number, headWork: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let last = 0; last <= layers; last++) {
    const rest = layers - last;
    const others = pp > 1 ? Math.ceil(rest / (pp - 1)) : rest > 0 ? Number.POSITIVE_INFINITY : 0;
    best = Math.min(best, Math.max(headWork + last * layerWork, others * layerWork));
  }
  return best;
}

/** Validates a layout against a model and returns its derived sizes. */
export function checkLayout(spec: MoEModelSpec, layout: TrainingLayout): { world: number; etp: number; cp: number; vp: number; edp: number } {
  const etp = layout.etp ?? 1;
  const cp = layout.cp ?? 1;
  const vp = layout.vp ?? 1;
  const { tp, pp, ep, dp } = layout;
  for (const [k, v] of Object.entries({ tp, pp, ep, etp, cp, dp, vp })) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`layout.${k} must be a positive integer, got ${String(v)}`);
  }
  if (spec.numExperts % ep !== 0) throw new Error(`numExperts (${spec.numExperts}) must be divisible by ep (${ep})`);
  const world = tp * cp * dp * pp;
  if (world % (etp * ep * pp) !== 0) throw new Error(`world size ${world} (tp·cp·dp·pp) is not divisible by etp·ep·pp = ${etp * ep * pp}`);
  const layers = spec.numLayers + (spec.mtpLayers ?? 0);
  if (pp * vp > layers) throw new Error(`pp·vp = ${pp * vp} pipeline stages exceed the ${layers} layers`);
  if (spec.moeFfnHiddenSize % etp !== 0) throw new Error(`moeFfnHiddenSize (${spec.moeFfnHiddenSize}) must be divisible by etp (${etp})`);
  return { world, etp, cp, vp, edp: world / (etp * ep * pp) };
}

/** Estimated step time, throughput, TFLOPS/GPU and MFU of a training run (see the module comment). */
export function estimatePerformance(run: TrainingRun, eff: Efficiency = DEFAULT_EFFICIENCY): PerformanceEstimate {
  const { spec, layout, gpu, precision, seqLength, microBatchSize: mbs, globalBatchSize: gbs } = run;
  const { world, etp, cp, vp, edp } = checkLayout(spec, layout);
  const { tp, pp, ep, dp } = layout;
  if (!(Number.isInteger(gbs) && gbs >= 1 && Number.isInteger(mbs) && mbs >= 1)) throw new Error('globalBatchSize and microBatchSize must be positive integers');
  if (gbs % (mbs * dp) !== 0) throw new Error(`globalBatchSize (${gbs}) must be divisible by microBatchSize·dp = ${mbs * dp}`);
  if (seqLength % (cp * (cp > 1 ? 2 : 1)) !== 0) throw new Error(`seqLength (${seqLength}) must be divisible by 2·cp = ${2 * cp}`);
  const peak = peakFlops(gpu, precision);
  const recompute = new Set(run.recompute ?? []);
  const full = recompute.has('full');

  const tokens = gbs * seqLength; // per step, whole cluster
  const perGpu = tokens / world; // token share of each GPU's work (tp, cp, pp, ep split it evenly)
  const mf = megatronFlopsPerToken(spec, seqLength);
  const moeLayers = spec.numLayers - spec.numDenseLayers + (spec.mtpLayers ?? 0);
  const allLayers = spec.numLayers + (spec.mtpLayers ?? 0);

  // --- compute (hardware FLOPs: flash attention's backward recomputes QKᵀ: 7 matmuls for Megatron's 6)
  const fwd = 1 / 3; // a module's forward share of its forward + backward FLOPs
  const mlaUp = (() => {
    const a = spec.attention;
    if (a.kind !== 'mla') return 0;
    const up = (a.qLoraRank ?? 0) * a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim) + a.kvLoraRank * a.numHeads * (a.qkNopeHeadDim + a.vHeadDim);
    return 6 * up * allLayers;
  })();
  const extra = (flops: number, on: boolean) => (full || on ? flops * fwd : 0);
  const denseFlops = mf.attentionProjections + mf.denseMlp + mf.sharedExperts + mf.mtp;
  const denseExtra = full ? denseFlops * fwd : extra(mlaUp, recompute.has('mla_up_proj')) + extra(mf.denseMlp, recompute.has('mlp')) + extra(mf.sharedExperts, recompute.has('shared_experts') || recompute.has('moe'));
  const expertExtra = extra(mf.routedExperts, recompute.has('moe'));
  const attentionHw = (mf.attentionCore * 7) / 6;
  const attentionExtra = extra(attentionHw * (6 / 7), recompute.has('core_attn'));
  // GEMMs on the roofline: the slower of their FLOPs and their HBM traffic (weights and rows,
  // per micro-batch: experts with few rows each are bound by loading their weights)
  const microBatches = gbs / (mbs * dp);
  const inBytes = GEMM_INPUT_BYTES[precision];
  const shapes = linearShapes(spec);
  const hbm = gpu.hbmBandwidth * eff.hbm;
  const rowsDense = (mbs * seqLength) / cp; // sequence-parallel TP gathers the rows; tp splits the weights
  const rowsExperts = ((mbs * seqLength) / (tp * cp)) * spec.topk; // routed rows arriving at each GPU (balanced)
  const stageLayers = { all: allLayers / pp, dense: spec.numDenseLayers / pp, moe: moeLayers / pp };
  const denseBytes =
    microBatches *
    (stageLayers.all * linearPassBytes(shapes.attention, rowsDense, tp, inBytes) +
      stageLayers.dense * linearPassBytes(shapes.denseMlp, rowsDense, tp, inBytes) +
      stageLayers.moe * linearPassBytes(shapes.sharedExperts, rowsDense, tp, inBytes));
  const expertBytes = microBatches * stageLayers.moe * linearPassBytes(shapes.expert, rowsExperts, etp, inBytes, spec.numExperts / ep);
  const logitsBytes = (microBatches * linearPassBytes(shapes.logits, rowsDense, tp, GEMM_INPUT_BYTES.bf16)) / pp; // on the last stage: its even share
  const tDense = Math.max((perGpu * (denseFlops + denseExtra)) / (peak * eff.gemm), denseBytes / hbm);
  const tExperts = Math.max((perGpu * (mf.routedExperts + expertExtra)) / (peak * eff.groupedGemm), expertBytes / hbm);
  const tLogits = Math.max((perGpu * mf.logits) / (gpu.bf16 * eff.gemm), logitsBytes / hbm);
  const tAttention = (perGpu * (attentionHw + attentionExtra)) / (gpu.bf16 * eff.attention);
  const memBytes =
    spec.numDenseLayers * memoryBoundBytesPerToken(spec, false, precision) + moeLayers * memoryBoundBytesPerToken(spec, true, precision);
  // recomputed elementwise forwards: the two RMSNorms (read + write H each) and the routed SwiGLU
  const normsForward = allLayers * 2 * 2 * spec.hiddenSize * BF16;
  const actForward = moeLayers * (spec.gatedMlp ? 3 : 2) * spec.topk * spec.moeFfnHiddenSize * BF16;
  const memExtra = full ? memBytes / 3 : (recompute.has('layernorm') ? normsForward : 0) + (recompute.has('moe_act') ? actForward : 0);
  const tMemory = (perGpu * (memBytes + memExtra)) / (gpu.hbmBandwidth * eff.hbm);
  const tRecompute =
    (perGpu * denseExtra) / (peak * eff.gemm) + (perGpu * expertExtra) / (peak * eff.groupedGemm) + (perGpu * attentionExtra) / (gpu.bf16 * eff.attention) + (perGpu * memExtra) / (gpu.hbmBandwidth * eff.hbm);
  const compute = tDense + tExperts + tLogits + tAttention + tMemory;

  // --- communication, bytes per GPU per step
  const h = spec.hiddenSize;
  // tokens whose activations this GPU holds, summed over its pipeline stage's layers: every
  // token of its data-parallel replica, split by tp (sequence parallel) and cp
  const stageTokens = tokens / (dp * cp * tp);
  const moeLayersPerStage = moeLayers / pp;
  const layersPerStage = allLayers / pp;
  // EP: dispatch and combine, forward and backward, BF16 rows, to the other ranks holding the token's experts
  const epBytes = stageTokens * moeLayersPerStage * remoteRanksPerToken(spec.numExperts, spec.topk, ep) * h * BF16 * 4;
  // EP ranks are consecutive in the expert order etp-ep-edp-pp: the group spans etp·ep ranks
  const tEp = transferSeconds(epBytes, etp * ep, gpu, eff);
  // ETP: all-gather before and reduce-scatter after the experts, forward and backward
  const etpBytes = etp > 1 ? stageTokens * moeLayersPerStage * spec.topk * h * BF16 * 4 * ((etp - 1) / etp) : 0;
  // TP with sequence parallelism: per layer two all-gathers and two reduce-scatters forward, and again backward
  const tpBytes = tp > 1 ? ((stageTokens * tp * layersPerStage * h * BF16 * 8 * (tp - 1)) / tp) : 0;
  const tTp = transferSeconds(tpBytes, tp, gpu, eff) + transferSeconds(etpBytes, etp, gpu, eff);
  // CP ring attention: K and V of every other chunk pass each rank, forward; K, V and their gradients backward
  const a = spec.attention;
  const kvPerToken = a.kind === 'mla' ? a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim + a.vHeadDim) : 2 * a.numKvHeads * a.headDim;
  const cpBytes = cp > 1 ? stageTokens * layersPerStage * (kvPerToken / tp) * BF16 * 3 * (cp - 1) : 0;
  const tCp = transferSeconds(cpBytes, tp * cp, gpu, eff);
  // PP: each micro-batch's activations cross every virtual-stage boundary forward and back
  const ppBytes = pp > 1 ? microBatches * vp * 2 * ((mbs * seqLength) / (tp * cp)) * h * BF16 : 0;
  const tPp = transferSeconds(ppBytes, world, gpu, eff); // stages are a data-parallel world apart: across domains
  // DP (distributed optimizer): reduce-scatter FP32 gradients, all-gather BF16 parameters
  const p = countParams(spec);
  const nonExpertPerGpu = p.nonExpert / (tp * pp);
  const expertPerGpu = p.routedExperts / (etp * ep * pp);
  const dpGroup = dp * cp;
  const tDp =
    transferSeconds(ringBytes(nonExpertPerGpu * (4 + BF16), dpGroup), tp * dpGroup, gpu, eff) +
    transferSeconds(ringBytes(expertPerGpu * (4 + BF16), edp), etp * ep * edp, gpu, eff);
  // optimizer: Adam on this rank's shard, ~30 bytes per element (FP32 grad, master, m, v; BF16 param)
  const tOptimizer = ((nonExpertPerGpu / dpGroup + expertPerGpu / edp) * 30) / (gpu.hbmBandwidth * eff.hbm);

  // --- overlap
  const epExposed = run.overlapExpertComm ? Math.max(0, tEp - (compute - tMemory)) : tEp;
  const cpExposed = Math.max(0, tCp - tAttention);
  const ppExposed = vp > 1 ? 0 : tPp; // interleaved schedules overlap P2P with compute
  const perMicroBatch = compute / microBatches;
  const dpExposed = Math.max(0, tDp - 2 * perMicroBatch); // gradients under the last backward, parameters under the first forward
  // The pipeline runs at the pace of its busiest stage. Per layer: everything but the output
  // layer, which sits on the last stage (layers are moved off it to balance, in whole layers).
  const layerTime = compute - tLogits + epExposed + tTp + cpExposed;
  const balanced = layerTime + tLogits;
  const busiest = pipelineMakespan(allLayers, pp, (pp * layerTime) / allLayers, pp * tLogits);
  const bubbleFraction = (pp - 1) / (vp * microBatches);
  const pipelined = busiest * (1 + bubbleFraction) + ppExposed;
  const bubble = pipelined - ppExposed - balanced;
  const stepSeconds = pipelined + dpExposed + tOptimizer;

  const tokensPerSecond = tokens / stepSeconds;
  const tflopsPerGpu = (tokensPerSecond * mf.total) / world / 1e12;
  return {
    stepSeconds,
    tokensPerSecond,
    tokensPerSecondPerGpu: tokensPerSecond / world,
    tflopsPerGpu,
    mfu: (tflopsPerGpu * 1e12) / peak,
    worldSize: world,
    microBatches,
    modelFlopsPerToken: mf.total,
    breakdown: {
      denseGemm: tDense,
      expertGemm: tExperts,
      logits: tLogits,
      attention: tAttention,
      memoryBound: tMemory,
      recompute: tRecompute,
      expertParallel: epExposed,
      tensorParallel: tTp,
      contextParallel: cpExposed,
      pipelineParallel: ppExposed,
      dataParallel: dpExposed,
      optimizer: tOptimizer,
      bubble,
    },
    comm: { expertParallel: tEp, tensorParallel: tTp, contextParallel: tCp, pipelineParallel: tPp, dataParallel: tDp },
  };
}
