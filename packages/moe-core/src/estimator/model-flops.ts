/**
 * Model FLOPs per trained token as Megatron-LM counts them (megatron/training/training.py,
 * `num_floating_point_operations`, the transformer branch): every GEMM 3 times (forward,
 * backward data-gradient, backward weight-gradient) at 2 FLOPs per multiply-add, causal core
 * attention at half the square, the router and norms not counted, multi-token-prediction
 * layers counted as extra transformer layers plus their projection and an extra logit layer.
 * This is the numerator of the "TFLOP/s/GPU" Megatron and its benchmarks report, so the
 * estimator reports throughput in the same unit.
 */
import type { MoEModelSpec } from './estimator.js';

/** Per-token model FLOPs (forward + backward), split by the kind of work. */
export interface ModelFlops {
  /** Attention projections (q, k, v, output; MLA's down/up projections). */
  attentionProjections: number;
  /** Core attention (QKᵀ and softmax·V): grows with the sequence length. */
  attentionCore: number;
  /** Dense MLPs (DeepSeek's first layers). */
  denseMlp: number;
  /** The k routed experts of every MoE layer. */
  routedExperts: number;
  sharedExperts: number;
  /** MTP norms and eh-projections. */
  mtp: number;
  /** Output logits (main head plus one per MTP layer). */
  logits: number;
  total: number;
}

/** Megatron's model FLOPs per token at `seqLength` (unpacked sequences, full causal mask). */
export function megatronFlopsPerToken(spec: MoEModelSpec, seqLength: number): ModelFlops {
  const h = spec.hiddenSize;
  const mtp = spec.mtpLayers ?? 0;
  // MTP layers are MoE layers when the last layer is (always, for the presets)
  const moeLayers = spec.numLayers - spec.numDenseLayers + (spec.numExperts > 0 ? mtp : 0);
  const denseLayers = spec.numDenseLayers;
  const layers = spec.numLayers + mtp;
  const f = 3 * 2; // forward + 2 backward GEMMs, 2 FLOPs per multiply-add
  const gate = spec.gatedMlp ? 3 : 2;
  const a = spec.attention;
  let projections: number;
  let core: number;
  if (a.kind === 'mla') {
    const qTerm =
      a.qLoraRank === null ? h * a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim) : a.qLoraRank * (h + a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim) + 1);
    const kvTerm = a.kvLoraRank * (h + a.numHeads * (a.qkNopeHeadDim + a.vHeadDim) + 1) + h * a.qkRopeHeadDim;
    projections = f * (qTerm + kvTerm + a.numHeads * a.vHeadDim * h);
    core = f * ((a.numHeads * (a.qkNopeHeadDim + a.qkRopeHeadDim)) / 2 + (a.numHeads * a.vHeadDim) / 2);
  } else {
    const q = a.headDim * a.numHeads;
    const kv = a.headDim * a.numKvHeads;
    projections = f * (h * (q + 2 * kv) + q * h);
    core = f * q; // (q·/2 for the causal mask) × 2 for QKᵀ and ·V
  }
  const out: ModelFlops = {
    attentionProjections: projections * layers,
    attentionCore: core * seqLength * layers,
    denseMlp: f * h * spec.denseFfnHiddenSize * gate * denseLayers,
    routedExperts: f * h * spec.moeFfnHiddenSize * spec.topk * gate * moeLayers,
    sharedExperts: f * h * spec.sharedExpertFfnHiddenSize * gate * moeLayers,
    mtp: f * mtp * (3 * h + 2 * h * h),
    logits: f * h * spec.vocabSize * (mtp + 1),
    total: 0,
  };
  out.total = out.attentionProjections + out.attentionCore + out.denseMlp + out.routedExperts + out.sharedExperts + out.mtp + out.logits;
  return out;
}
