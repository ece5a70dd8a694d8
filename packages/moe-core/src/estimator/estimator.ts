/**
 * Size, compute and memory of an MoE transformer: total and active parameters, training FLOPs
 * per token, and memory per GPU under a parallel layout (Parallel Folding: attention
 * tp·cp·dp·pp, experts etp·ep·edp·pp). Parameter counts are exact sums of the weight matrices
 * of the architecture; FLOPs count 2 per multiply-add; memory is an estimate whose terms are
 * listed in `MemoryEstimate` (see the README for the assumptions).
 */
import type { MoEConfig } from '../config.js';

/** Multi-head latent attention (DeepSeek-V2/V3). */
export interface MlaAttention {
  kind: 'mla';
  numHeads: number;
  /** Query down-projection rank; null = full-rank query projection. */
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
}

/** Grouped-query attention (Qwen, Llama, Mixtral). */
export interface GqaAttention {
  kind: 'gqa';
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Per-head RMSNorm on q and k (Qwen3). */
  qkNorm?: boolean;
  /** Bias on the q, k, v projections (Qwen2). */
  qkvBias?: boolean;
}

/** An MoE decoder-only transformer. */
export interface MoEModelSpec {
  name: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  /** Leading layers with a dense MLP instead of MoE (DeepSeek's first_k_dense_replace). */
  numDenseLayers: number;
  /** FFN width of the dense layers. */
  denseFfnHiddenSize: number;
  numExperts: number;
  topk: number;
  /** FFN width of each routed expert. */
  moeFfnHiddenSize: number;
  /** Total FFN width of the shared experts (0 = none). */
  sharedExpertFfnHiddenSize: number;
  /** Gated (SwiGLU: 3 matrices) or not (GELU: 2 matrices). */
  gatedMlp: boolean;
  /** A per-expert routing bias vector (aux-loss-free balancing). */
  expertBias: boolean;
  attention: MlaAttention | GqaAttention;
  tiedEmbeddings: boolean;
  /**
   * Multi-token-prediction modules (DeepSeek-V3's MTP): counted in `ParamCounts.mtp`, not in
   * the headline total. Each is one MoE transformer layer plus two RMSNorms, a 2H×H projection
   * and a final norm; embedding and output head are shared with the main model.
   */
  mtpLayers?: number;
}

/** DeepSeek-V3 (config.json of deepseek-ai/DeepSeek-V3): 671 B total, 37 B active. */
export const DEEPSEEK_V3: MoEModelSpec = {
  name: 'DeepSeek-V3',
  vocabSize: 129280,
  hiddenSize: 7168,
  numLayers: 61,
  numDenseLayers: 3,
  denseFfnHiddenSize: 18432,
  numExperts: 256,
  topk: 8,
  moeFfnHiddenSize: 2048,
  sharedExpertFfnHiddenSize: 2048,
  gatedMlp: true,
  expertBias: true,
  attention: { kind: 'mla', numHeads: 128, qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128 },
  tiedEmbeddings: false,
  mtpLayers: 1,
};

/** Qwen3-235B-A22B (config.json of Qwen/Qwen3-235B-A22B): 235 B total, 22 B active. */
export const QWEN3_235B_A22B: MoEModelSpec = {
  name: 'Qwen3-235B-A22B',
  vocabSize: 151936,
  hiddenSize: 4096,
  numLayers: 94,
  numDenseLayers: 0,
  denseFfnHiddenSize: 12288,
  numExperts: 128,
  topk: 8,
  moeFfnHiddenSize: 1536,
  sharedExpertFfnHiddenSize: 0,
  gatedMlp: true,
  expertBias: false,
  attention: { kind: 'gqa', numHeads: 64, numKvHeads: 4, headDim: 128, qkNorm: true },
  tiedEmbeddings: false,
};

export const MODEL_PRESETS: Record<string, MoEModelSpec> = {
  'deepseek-v3': DEEPSEEK_V3,
  'qwen3-235b-a22b': QWEN3_235B_A22B,
};

/** Parameters of one attention block (projections and their norms). */
export function attentionParams(h: number, a: MlaAttention | GqaAttention): number {
  if (a.kind === 'mla') {
    const qk = a.qkNopeHeadDim + a.qkRopeHeadDim;
    const q = a.qLoraRank === null ? h * a.numHeads * qk : h * a.qLoraRank + a.qLoraRank + a.qLoraRank * a.numHeads * qk;
    const kvA = h * (a.kvLoraRank + a.qkRopeHeadDim) + a.kvLoraRank;
    const kvB = a.kvLoraRank * a.numHeads * (a.qkNopeHeadDim + a.vHeadDim);
    const o = a.numHeads * a.vHeadDim * h;
    return q + kvA + kvB + o;
  }
  const qDim = a.numHeads * a.headDim;
  const kvDim = a.numKvHeads * a.headDim;
  let n = h * qDim + 2 * h * kvDim + qDim * h;
  if (a.qkvBias) n += qDim + 2 * kvDim;
  if (a.qkNorm) n += 2 * a.headDim;
  return n;
}

/** Parameters of one MLP of width f (3 matrices when gated). */
export function mlpParams(h: number, f: number, gated: boolean): number {
  return (gated ? 3 : 2) * h * f;
}

/** Parameter counts of a model, split the way parallelism splits them. */
export interface ParamCounts {
  total: number;
  active: number;
  embedding: number;
  outputLayer: number;
  attention: number;
  denseMlp: number;
  /** All routed experts of all MoE layers. */
  routedExperts: number;
  sharedExperts: number;
  router: number;
  norms: number;
  /** Everything but the routed experts (sharded by tp·pp, replicated over dp). */
  nonExpert: number;
  /** Parameters of the multi-token-prediction modules (not in total/active). */
  mtp: number;
}

export function countParams(spec: MoEModelSpec): ParamCounts {
  const h = spec.hiddenSize;
  const moeLayers = spec.numLayers - spec.numDenseLayers;
  const embedding = spec.vocabSize * h;
  const outputLayer = spec.tiedEmbeddings ? 0 : spec.vocabSize * h;
  const attention = spec.numLayers * attentionParams(h, spec.attention);
  const denseMlp = spec.numDenseLayers * mlpParams(h, spec.denseFfnHiddenSize, spec.gatedMlp);
  const perExpert = mlpParams(h, spec.moeFfnHiddenSize, spec.gatedMlp);
  const routedExperts = moeLayers * spec.numExperts * perExpert;
  const sharedExperts = spec.sharedExpertFfnHiddenSize > 0 ? moeLayers * mlpParams(h, spec.sharedExpertFfnHiddenSize, spec.gatedMlp) : 0;
  const router = moeLayers * (spec.numExperts * h + (spec.expertBias ? spec.numExperts : 0));
  const norms = spec.numLayers * 2 * h + h;
  const total = embedding + outputLayer + attention + denseMlp + routedExperts + sharedExperts + router + norms;
  const active = total - routedExperts + moeLayers * spec.topk * perExpert;
  const moeLayer =
    attentionParams(h, spec.attention) +
    spec.numExperts * perExpert +
    (spec.sharedExpertFfnHiddenSize > 0 ? mlpParams(h, spec.sharedExpertFfnHiddenSize, spec.gatedMlp) : 0) +
    spec.numExperts * h +
    (spec.expertBias ? spec.numExperts : 0) +
    2 * h;
  const mtp = (spec.mtpLayers ?? 0) * (moeLayer + 2 * h + 2 * h * h + h);
  return {
    total,
    active,
    embedding,
    outputLayer,
    attention,
    denseMlp,
    routedExperts,
    sharedExperts,
    router,
    norms,
    nonExpert: total - routedExperts,
    mtp,
  };
}

/** FLOPs per token (2 per multiply-add). */
export interface FlopsPerToken {
  /** Forward matmuls over the active weights, including the output layer. */
  forwardDense: number;
  /** Forward attention scores and weighted values (causal: half of the full square). */
  forwardAttention: number;
  forward: number;
  /** Forward + backward (2× forward) = 3× forward. */
  training: number;
}

/** Per-token FLOPs at a sequence length (causal attention by default). */
export function flopsPerToken(spec: MoEModelSpec, seqLength: number, options: { causal?: boolean } = {}): FlopsPerToken {
  const p = countParams(spec);
  // Matmul weights touched per token: active params minus norms, the routing bias and the
  // embedding lookup (a tied embedding is also the output matmul, so it stays).
  const routerBias = spec.expertBias ? (spec.numLayers - spec.numDenseLayers) * spec.numExperts : 0;
  const matmulWeights = p.active - p.norms - routerBias - (spec.tiedEmbeddings ? 0 : p.embedding);
  const forwardDense = 2 * matmulWeights;
  const a = spec.attention;
  const qkDim = a.kind === 'mla' ? a.qkNopeHeadDim + a.qkRopeHeadDim : a.headDim;
  const vDim = a.kind === 'mla' ? a.vHeadDim : a.headDim;
  const causal = options.causal ?? true;
  const forwardAttention = spec.numLayers * 2 * a.numHeads * (qkDim + vDim) * seqLength * (causal ? 0.5 : 1);
  const forward = forwardDense + forwardAttention;
  return { forwardDense, forwardAttention, forward, training: 3 * forward };
}

/** A parallel layout (Parallel Folding). dp is the attention data-parallel size. */
export interface ParallelLayout {
  tp: number;
  pp: number;
  ep: number;
  /** Expert tensor parallel; default 1. */
  etp?: number;
  cp?: number;
  dp: number;
}

export interface MemoryOptions {
  /** Micro-batch size and sequence length for activations. */
  microBatchSize: number;
  seqLength: number;
  /** Bytes per weight (2 for bf16), per gradient (4 fp32 main grads), per optimizer element (12: fp32 master + Adam m, v). */
  weightBytes?: number;
  gradBytes?: number;
  optimizerBytes?: number;
  /** Shard optimizer state over the data-parallel ranks (Megatron's distributed optimizer). Default true. */
  distributedOptimizer?: boolean;
  /** Micro-batches in flight on the first pipeline stage (1F1B keeps pp of them). Default pp. */
  inflightMicroBatches?: number;
  /** Selective recomputation of the expert MLPs drops their intermediate activations. */
  recomputeExperts?: boolean;
  /** Full recomputation: each layer keeps only its input (plus one layer's working set). */
  recomputeFull?: boolean;
}

export interface MemoryEstimate {
  /** Parameters held by one GPU. */
  paramsPerGpu: number;
  nonExpertParamsPerGpu: number;
  expertParamsPerGpu: number;
  weightsBytes: number;
  gradsBytes: number;
  optimizerBytes: number;
  activationsBytes: number;
  totalBytes: number;
  /** Total GPUs of the layout and the expert-data-parallel size. */
  worldSize: number;
  edp: number;
}

/**
 * Memory per GPU of the busiest (first) pipeline stage, holding ⌈layers / pp⌉ layers:
 * non-expert weights split by tp·pp (replicated over dp·cp), routed experts split by
 * etp·ep·pp (replicated over edp);
 * optimizer state sharded over dp·cp (non-expert) and edp (experts) with the distributed
 * optimizer; activations per layer ≈ 15·s·b·h/tp bytes for attention and norms (Korthikanti et
 * al. 2022, bf16, sequence parallel) plus the MLP's: for MoE layers the dispatched tokens'
 * expert activations (k·s·b/(tp·cp) rows × (H + 2F_gate + F) × 2 bytes, H only when
 * recomputed) and the shared expert's, times the micro-batches in flight.
 */
export function memoryPerGpu(spec: MoEModelSpec, layout: ParallelLayout, options: MemoryOptions): MemoryEstimate {
  const { tp, pp, ep, dp } = layout;
  const etp = layout.etp ?? 1;
  const cp = layout.cp ?? 1;
  for (const [k, v] of Object.entries({ tp, pp, ep, etp, cp, dp })) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`memoryPerGpu: layout.${k} must be a positive integer, got ${String(v)}`);
  }
  if (spec.numExperts % ep !== 0) throw new Error(`memoryPerGpu: numExperts (${spec.numExperts}) must be divisible by ep (${ep})`);
  const worldSize = tp * cp * dp * pp;
  if (worldSize % (etp * ep * pp) !== 0) throw new Error(`memoryPerGpu: world size ${worldSize} is not divisible by etp·ep·pp = ${etp * ep * pp}`);
  if (pp > spec.numLayers) throw new Error(`memoryPerGpu: pp (${pp}) exceeds numLayers (${spec.numLayers})`);
  // the busiest stage holds ⌈layers / pp⌉ layers (Megatron's uneven pipeline layouts place the rest)
  const layersPerStage = Math.ceil(spec.numLayers / pp);
  const stageShare = layersPerStage / spec.numLayers;
  const edp = worldSize / (etp * ep * pp);
  const p = countParams(spec);
  const nonExpertParamsPerGpu = (p.nonExpert * stageShare) / tp;
  // a stage of MoE layers only (the busiest for experts): ⌈layers / pp⌉ layers' experts
  const moeLayers = spec.numLayers - spec.numDenseLayers;
  const expertParamsPerGpu = moeLayers > 0 ? ((p.routedExperts / moeLayers) * Math.min(layersPerStage, moeLayers)) / (etp * ep) : 0;
  const paramsPerGpu = nonExpertParamsPerGpu + expertParamsPerGpu;
  const wb = options.weightBytes ?? 2;
  const gb = options.gradBytes ?? 4;
  const ob = options.optimizerBytes ?? 12;
  const dist = options.distributedOptimizer ?? true;
  const weightsBytes = paramsPerGpu * wb;
  const gradsBytes = paramsPerGpu * gb;
  const optimizerBytes = dist ? (nonExpertParamsPerGpu * ob) / (dp * cp) + (expertParamsPerGpu * ob) / edp : paramsPerGpu * ob;

  const s = options.seqLength / cp;
  const b = options.microBatchSize;
  const h = spec.hiddenSize;
  const moeFraction = (spec.numLayers - spec.numDenseLayers) / spec.numLayers;
  // Korthikanti et al.'s 34·sbh per layer (bf16, sequence parallel) is 15·sbh for attention
  // and norms plus 19·sbh for a 4h MLP; the MLP part is replaced by the layer's own MLP: the
  // dense MLP's input, fc1 output and activation output, or the routed rows' (k·s·b/tp rows).
  const attentionActs = (s * b * h * 15) / tp;
  const mlpActs = (tokens: number, f: number, keepIntermediate: boolean) => tokens * 2 * (h + (keepIntermediate ? (spec.gatedMlp ? 3 : 2) * f : 0));
  const denseActs = mlpActs((s * b) / tp, spec.denseFfnHiddenSize, true);
  const sharedActs = spec.sharedExpertFfnHiddenSize > 0 ? mlpActs((s * b) / tp, spec.sharedExpertFfnHiddenSize, !options.recomputeExperts) : 0;
  const rows = (spec.topk * s * b) / tp;
  const expertActs = mlpActs(rows, spec.moeFfnHiddenSize, !options.recomputeExperts) + sharedActs;
  const perLayerBase = attentionActs + (1 - moeFraction) * denseActs;
  // full recomputation keeps each layer's input (2 bytes per element) and one layer's working set
  const perLayer = options.recomputeFull ? (s * b * h * 2) / tp : perLayerBase + moeFraction * expertActs;
  const workingSet = options.recomputeFull ? perLayerBase + moeFraction * expertActs : 0;
  const inflight = options.inflightMicroBatches ?? pp;
  const activationsBytes = perLayer * layersPerStage * inflight + workingSet;
  const totalBytes = weightsBytes + gradsBytes + optimizerBytes + activationsBytes;
  return {
    paramsPerGpu,
    nonExpertParamsPerGpu,
    expertParamsPerGpu,
    weightsBytes,
    gradsBytes,
    optimizerBytes,
    activationsBytes,
    totalBytes,
    worldSize,
    edp,
  };
}

/**
 * The model spec of a single-architecture stack built from an MoEConfig (every layer MoE,
 * GQA attention given by the caller), for estimating the layer users configure.
 */
export function specFromMoEConfig(
  config: Pick<MoEConfig, 'numExperts' | 'topk' | 'hiddenSize' | 'ffnHiddenSize' | 'activation' | 'sharedExpertSize' | 'routerEnableExpertBias' | 'numLayers'>,
  model: { vocabSize: number; attention: MlaAttention | GqaAttention; tiedEmbeddings?: boolean; name?: string },
): MoEModelSpec {
  return {
    name: model.name ?? 'custom',
    vocabSize: model.vocabSize,
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    numDenseLayers: 0,
    denseFfnHiddenSize: config.ffnHiddenSize,
    numExperts: config.numExperts,
    topk: config.topk,
    moeFfnHiddenSize: config.ffnHiddenSize,
    sharedExpertFfnHiddenSize: config.sharedExpertSize ?? 0,
    gatedMlp: config.activation === 'swiglu',
    expertBias: config.routerEnableExpertBias,
    attention: model.attention,
    tiedEmbeddings: model.tiedEmbeddings ?? false,
  };
}
