/**
 * `topkRouter`: Megatron-Core's `topk_routing_with_score_function` (with
 * `group_limited_topk`) as one op: score function, optional group limit and expert bias,
 * top-k, normalization and scaling factor. fp32 throughout.
 *
 * Ties: with `tieOrder: 'lowest-index'` (the default) the lower expert index (or group
 * index) wins among equal scores — the deterministic choice every backend's kernel makes.
 * `tieOrder: 'torch-cpu'` replays torch.topk's CPU kernel instead (and sums group scores in
 * fp32, as torch does), so that ties resolve as in Megatron-Core on PyTorch; it runs on the
 * host (cpu and kiln-native backends).
 */
import { defineOp, type OpKernel, tf, vjp } from '@kiln/tensor';
import { oneHot } from '../tf-helpers.js';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, readF32 } from '../backend-data.js';
import { EMPTY_F32, nativeOps } from '../native.js';
import { routerWgsl } from '../wgsl/moe.js';
import { fmtShape, requireFloat, requirePositiveInt, requireRank, requireShape, requireTensor } from '../checks.js';
import { untaped } from '../nested-grad.js';
import { TOPK_TIE_ORDERS, type TopkTieOrder, topkIndices } from './topk-select.js';

type Tensor = tf.Tensor;

export type ScoreFunction = 'softmax' | 'sigmoid' | 'sqrtsoftplus';
export const SCORE_FUNCTIONS: readonly ScoreFunction[] = ['softmax', 'sigmoid', 'sqrtsoftplus'];

export type RouterAttrs = {
  topk: number;
  scoreFunction?: ScoreFunction;
  /** softmax over all experts before top-k (Megatron's `use_pre_softmax`) */
  usePreSoftmax?: boolean;
  numGroups?: number;
  groupTopk?: number;
  scalingFactor?: number;
  /** How equal scores are ordered: 'lowest-index' (default, every kernel) or 'torch-cpu' (host only). */
  tieOrder?: TopkTieOrder;
};

const OP = 'topkRouter';

export function validateRouter(inputs: Partial<Record<'logits' | 'expertBias', Tensor>>, attrs: RouterAttrs): void {
  const logits = requireTensor(OP, 'logits', inputs.logits);
  requireRank(OP, 'logits', logits, 2, 'tokens, experts');
  requireFloat(OP, 'logits', logits);
  const E = logits.shape[1]!;
  const k = requirePositiveInt(OP, 'topk', attrs.topk);
  if (k > E) throw new Error(`${OP}: 'topk' = ${k} exceeds the ${E} experts of logits ${fmtShape(logits.shape)}`);
  const fn = attrs.scoreFunction ?? 'softmax';
  if (!SCORE_FUNCTIONS.includes(fn)) throw new Error(`${OP}: 'scoreFunction' must be one of ${SCORE_FUNCTIONS.join(', ')}, got '${fn}'`);
  if (inputs.expertBias) {
    requireShape(OP, 'expertBias', inputs.expertBias, [E], `experts of logits ${fmtShape(logits.shape)}`);
    requireFloat(OP, 'expertBias', inputs.expertBias);
  }
  if (attrs.groupTopk) {
    const G = requirePositiveInt(OP, 'numGroups', attrs.numGroups);
    const gk = requirePositiveInt(OP, 'groupTopk', attrs.groupTopk);
    if (E % G !== 0) throw new Error(`${OP}: ${E} experts do not split into 'numGroups' = ${G} equal groups`);
    if (gk > G) throw new Error(`${OP}: 'groupTopk' = ${gk} exceeds 'numGroups' = ${G}`);
    if (Math.floor(k / gk) < 1) throw new Error(`${OP}: 'topk' = ${k} must be at least 'groupTopk' = ${gk} (each group is scored by its top topk/groupTopk experts)`);
    if (k > gk * (E / G)) throw new Error(`${OP}: 'topk' = ${k} exceeds the ${gk * (E / G)} experts in the ${gk} kept groups`);
  }
  if (attrs.tieOrder !== undefined && !TOPK_TIE_ORDERS.includes(attrs.tieOrder)) {
    throw new Error(`${OP}: 'tieOrder' must be one of ${TOPK_TIE_ORDERS.join(', ')}, got '${String(attrs.tieOrder)}'`);
  }
  if (attrs.scalingFactor !== undefined && !Number.isFinite(attrs.scalingFactor)) {
    throw new Error(`${OP}: 'scalingFactor' must be finite, got ${attrs.scalingFactor}`);
  }
}

function softplus(x: number): number {
  // torch's softplus: identity above threshold 20.
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** Selection and probabilities for every token, on the host. */
export function routeHost(
  logits: Float32Array,
  bias: Float32Array | undefined,
  T: number,
  E: number,
  attrs: RouterAttrs,
): { probs: Float32Array; indices: Int32Array } {
  const k = attrs.topk;
  const fn = attrs.scoreFunction ?? 'softmax';
  const probs = new Float32Array(T * E);
  const indices = new Int32Array(T * k);
  const row = new Float32Array(E);
  const sel = new Float32Array(E);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) row[e] = logits[t * E + e]!;
    // The scores the selection looks at, and the scores the gates come from.
    // As Megatron-Core's function: usePreSoftmax only affects softmax, expertBias only the others.
    if (fn === 'softmax') {
      if (attrs.usePreSoftmax) softmaxInPlace(row, E);
      sel.set(row);
    } else {
      for (let e = 0; e < E; e++) row[e] = fn === 'sigmoid' ? Math.fround(1 / (1 + Math.exp(-row[e]!))) : Math.fround(Math.sqrt(softplus(row[e]!)));
      for (let e = 0; e < E; e++) sel[e] = bias ? Math.fround(row[e]! + bias[e]!) : row[e]!;
    }
    const order = attrs.tieOrder ?? 'lowest-index';
    const chosen = attrs.groupTopk ? groupLimitedTopkRow(sel, E, k, attrs.numGroups!, attrs.groupTopk, order) : topkIndices(sel, E, k, 0, 1, true, order);
    const gates = chosen.map((e) => row[e]!);
    if (fn === 'softmax' && !attrs.usePreSoftmax) {
      const m = Math.max(...gates);
      const ex = gates.map((g) => Math.exp(g - m));
      const s = ex.reduce((a, b) => a + b, 0);
      for (let i = 0; i < k; i++) gates[i] = ex[i]! / s;
    } else if (fn !== 'softmax' && k > 1) {
      const s = gates.reduce((a, b) => a + b, 0) + 1e-20;
      for (let i = 0; i < k; i++) gates[i] = gates[i]! / s;
    }
    const scale = attrs.scalingFactor ? attrs.scalingFactor : 1;
    chosen.forEach((e, i) => {
      indices[t * k + i] = e;
      probs[t * E + e] = gates[i]! * scale;
    });
  }
  return { probs, indices };
}

function softmaxInPlace(v: Float32Array, n: number): void {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) m = Math.max(m, v[i]!);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(v[i]! - m);
  for (let i = 0; i < n; i++) v[i] = Math.exp(v[i]! - m) / s;
}

/**
 * Megatron's `group_limited_topk` for one token: group score = sum of the group's top
 * ⌊k / gk⌋ scores (in fp32 with 'torch-cpu', as torch sums; in double, rounded once, as the
 * kernels do otherwise), keep the best gk groups, top-k over their experts.
 */
export function groupLimitedTopkRow(scores: Float32Array, E: number, k: number, G: number, gk: number, order: TopkTieOrder): number[] {
  const per = E / G;
  const inGroup = Math.floor(k / gk);
  const groupScores = new Float32Array(G);
  for (let g = 0; g < G; g++) {
    let s = 0;
    for (const i of topkIndices(scores, per, inGroup, g * per, 1, true, order)) s = order === 'torch-cpu' ? Math.fround(s + scores[g * per + i]!) : s + scores[g * per + i]!;
    groupScores[g] = s;
  }
  const keep = new Set(topkIndices(groupScores, G, gk, 0, 1, true, order));
  const masked = new Float32Array(E);
  for (let e = 0; e < E; e++) masked[e] = keep.has(Math.floor(e / per)) ? scores[e]! : Number.NEGATIVE_INFINITY;
  return topkIndices(masked, E, k, 0, 1, true, order);
}

const NEG_INF = Number.NEGATIVE_INFINITY;

/** Top-k over the last axis with group limiting, in tf ops (Megatron's `_compute_topk`). */
function selectReference(scores: Tensor, k: number, attrs: RouterAttrs): Tensor {
  const [T, E] = scores.shape as [number, number];
  if (!attrs.groupTopk) return tf.topk(scores, k).indices;
  const G = attrs.numGroups!;
  const gk = attrs.groupTopk;
  const groupScores = tf.sum(tf.topk(tf.reshape(scores, [T, G, E / G]), Math.floor(k / gk)).values, -1);
  const groupIdx = tf.topk(groupScores, gk).indices;
  const groupMask = tf.sum(oneHot(groupIdx, G), 1); // [T, G]
  const scoreMask = tf.reshape(tf.tile(tf.expandDims(groupMask, 2), [1, 1, E / G]), [T, E]);
  const masked = tf.where(tf.greater(scoreMask, 0), scores, tf.fill([T, E], NEG_INF));
  return tf.topk(masked, k).indices;
}

/** Routing probabilities [T, E] for a fixed selection, differentiable in the logits. */
export function probsForSelection(logits: Tensor, indices: Tensor, attrs: RouterAttrs): Tensor {
  const E = logits.shape[1]!;
  const k = attrs.topk;
  const fn = attrs.scoreFunction ?? 'softmax';
  const mask = tf.sum(oneHot(indices, E), 1); // [T, E], 0/1
  let probs: Tensor;
  if (fn === 'softmax') {
    if (attrs.usePreSoftmax) probs = tf.mul(tf.softmax(logits), mask);
    else {
      // softmax over the selected logits only: shift by their max for range.
      const masked = tf.where(tf.greater(mask, 0), logits, tf.fill(logits.shape, NEG_INF));
      const ex = tf.mul(tf.exp(tf.sub(logits, tf.max(masked, -1, true))), mask);
      probs = tf.div(ex, tf.sum(ex, -1, true));
    }
  } else {
    const s = fn === 'sigmoid' ? tf.sigmoid(logits) : tf.sqrt(tf.softplus(logits));
    const gates = tf.mul(s, mask);
    probs = k > 1 ? tf.div(gates, tf.add(tf.sum(gates, -1, true), 1e-20)) : gates;
  }
  if (attrs.scalingFactor) probs = tf.mul(probs, attrs.scalingFactor);
  return probs;
}

function routerReference(inputs: Partial<Record<'logits' | 'expertBias', Tensor>>, attrs: RouterAttrs): Tensor[] {
  const logits = inputs.logits!;
  // The choice is piecewise constant in the logits: made off the tape, then the gates are
  // computed (differentiably) for it.
  const indices = untaped(() => selectFromLogits(logits, inputs.expertBias, attrs));
  return [probsForSelection(logits, indices, attrs), indices];
}

function selectFromLogits(logits: Tensor, expertBias: Tensor | undefined, attrs: RouterAttrs): Tensor {
  const fn = attrs.scoreFunction ?? 'softmax';
  let selScores: Tensor;
  if (fn === 'softmax') selScores = attrs.usePreSoftmax ? tf.softmax(logits) : logits;
  else {
    const s = fn === 'sigmoid' ? tf.sigmoid(logits) : tf.sqrt(tf.softplus(logits));
    selScores = expertBias ? tf.add(s, expertBias) : s;
  }
  if (attrs.tieOrder !== 'torch-cpu') return selectReference(selScores, attrs.topk, attrs);
  // torch's CPU tie order is a host algorithm: the scores are read back and chosen there.
  const [T, E] = selScores.shape as [number, number];
  const host = Float32Array.from(selScores.dataSync() as ArrayLike<number>);
  const out = new Int32Array(T * attrs.topk);
  for (let t = 0; t < T; t++) {
    const row = host.subarray(t * E, (t + 1) * E);
    const chosen = attrs.groupTopk ? groupLimitedTopkRow(row, E, attrs.topk, attrs.numGroups!, attrs.groupTopk, 'torch-cpu') : topkIndices(row, E, attrs.topk);
    out.set(chosen, t * attrs.topk);
  }
  return tf.tensor2d(out, [T, attrs.topk], 'int32');
}

export const routerCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const logits = inputInfo(inputs, 'logits')!;
  const [T, E] = logits.shape as [number, number];
  const a = attrs as unknown as RouterAttrs;
  // The addon's kernel orders ties by index; torch's CPU order runs here on the host.
  const native = a.tieOrder === 'torch-cpu' ? undefined : nativeOps(backend, 'topkRouter');
  if (native) {
    const probs = new Float32Array(T * E);
    const indices = new Int32Array(T * a.topk);
    const fn = SCORE_FUNCTIONS.indexOf(a.scoreFunction ?? 'softmax');
    native.topkRouter(readF32(b, logits)!, readF32(b, inputInfo(inputs, 'expertBias')) ?? EMPTY_F32, probs, indices, E, a.topk, fn, Boolean(a.usePreSoftmax), a.numGroups ?? 0, a.groupTopk ?? 0, a.scalingFactor ?? 0);
    return [b.makeTensorInfo([T, E], 'float32', probs), b.makeTensorInfo([T, a.topk], 'int32', indices)];
  }
  const { probs, indices } = routeHost(readF32(b, logits)!, readF32(b, inputInfo(inputs, 'expertBias')), T, E, a);
  return [b.makeTensorInfo([T, E], 'float32', probs), b.makeTensorInfo([T, a.topk], 'int32', indices)];
};

export const topkRouterOp = defineOp<'logits' | 'expertBias', RouterAttrs, Tensor[]>({
  name: OP,
  inputs: ['logits', 'expertBias'] as const,
  nonDifferentiable: ['expertBias'],
  validate: validateRouter,
  reference: routerReference,
  kernels: {
    ...hostKernels(routerCpu),
    webgpu: (args) => {
      if ((args.attrs as unknown as RouterAttrs).tieOrder === 'torch-cpu') {
        throw new Error(`${OP}: tieOrder 'torch-cpu' replays PyTorch's CPU kernel on the host (cpu or kiln-native backend); on webgpu use 'lowest-index'`);
      }
      return routerWgsl(args);
    },
  },
  // The selection is piecewise constant; the gates are differentiated for that selection.
  gradient: ({ inputs, outputs, dy, attrs }) => {
    const [dLogits] = vjp((l) => [probsForSelection(l, outputs[1]!, attrs)], [inputs.logits!], [dy[0]!]);
    return { logits: dLogits! };
  },
});

export interface TopkRouterOptions extends RouterAttrs {
  /** [experts], added to the scores for the choice only (sigmoid / sqrtsoftplus) */
  expertBias?: Tensor;
}

export interface TopkRouting {
  /** [tokens, experts]: the gate of each chosen expert, zero elsewhere (Megatron's `routing_probs`) */
  probs: Tensor;
  /** [tokens, experts] bool: which experts each token goes to (Megatron's `routing_map`) */
  routingMap: Tensor;
  /** [tokens, topk] int32: the chosen experts, best first */
  topIndices: Tensor;
  /** [tokens, topk]: their gates, in the order of `topIndices` (Megatron's `dense_output`) */
  topProbs: Tensor;
}

/**
 * Megatron-Core's top-k router: `logits` [tokens, experts] → gates and routing map.
 * Options: `topk`, `scoreFunction` ('softmax' | 'sigmoid' | 'sqrtsoftplus'), `usePreSoftmax`,
 * `numGroups` + `groupTopk` (group-limited routing), `scalingFactor`, `expertBias`.
 * `probs` and `topProbs` are differentiable in the logits.
 */
export function topkRouter(logits: Tensor, options: TopkRouterOptions): TopkRouting {
  const { expertBias, ...attrs } = options;
  const inputs: Partial<Record<'logits' | 'expertBias', Tensor>> = { logits };
  if (expertBias) inputs.expertBias = expertBias;
  const [probs, topIndices] = topkRouterOp(inputs, attrs);
  const E = logits.shape[1]!;
  const onehot = oneHot(topIndices!, E); // [T, k, E]
  const routingMap = tf.cast(tf.sum(onehot, 1), 'bool');
  const topProbs = tf.sum(tf.mul(tf.cast(onehot, 'float32'), tf.expandDims(probs!, 1)), 2);
  onehot.dispose();
  return { probs: probs!, routingMap, topIndices: topIndices!, topProbs };
}
