/**
 * The one validated configuration object of an MoE layer. Field names are Megatron-Core's
 * `moe_*` / parallelism arguments in camelCase with the `moe` prefix dropped, so users of
 * Megatron recognise every knob. `validateMoEConfig` fills defaults and rejects invalid values
 * and combinations with an error that names the field.
 */

/** Router score function (`moe_router_score_function`). */
export type RouterScoreFunction = 'softmax' | 'sigmoid' | 'sqrtsoftplus';

/** One load-balancing type (`moe_router_load_balancing_type`). */
export type LoadBalancingType = 'aux_loss' | 'seq_aux_loss' | 'global_aux_loss' | 'sinkhorn' | 'none';

/** Capacity drop policy (`moe_token_drop_policy`). */
export type DropPolicy = 'probs' | 'position';

/** Expert MLP activation: SwiGLU (gated, fc1 is 2·ffn wide) or GELU. */
export type ExpertActivation = 'swiglu' | 'gelu';

/** Token dispatcher (`moe_token_dispatcher_type`). */
export type TokenDispatcherType = 'allgather' | 'alltoall';

/**
 * Modules that selective recomputation can re-run in backward (`recompute_modules`):
 * `moe_act` the expert activation, `experts` the routed expert MLP (Kiln's name for
 * Megatron's grouped-MLP recompute), `shared_experts` the shared expert MLP, `moe` the whole
 * MoE layer.
 */
export type RecomputeModule = 'moe_act' | 'experts' | 'shared_experts' | 'moe';

/**
 * Modules whose inputs activation offloading moves off the compute backend (`offload_modules`):
 * `expert_fc1` the grouped fc1 input, `moe_act` the activation input, `fused_group_mlp` the
 * input of the whole grouped MLP.
 */
export type OffloadModule = 'expert_fc1' | 'moe_act' | 'fused_group_mlp';

/** FP8 format (`fp8`): E4M3 everywhere, or hybrid = E4M3 forward, E5M2 gradients. */
export type Fp8Format = 'e4m3' | 'hybrid';

/** FP8 scaling recipe (`fp8_recipe`). */
export type Fp8RecipeName = 'delayed' | 'tensorwise' | 'blockwise' | 'mxfp8';

/** FP8 amax reduction over the history (`fp8_amax_compute_algo`). */
export type AmaxComputeAlgo = 'most_recent' | 'max';

/** The complete, validated configuration of an MoE layer. */
export interface MoEConfig {
  // ---- experts and routing -------------------------------------------------------------
  /** Number of routed experts E (`num_moe_experts`). Integer ≥ 1, divisible by `ep`. */
  numExperts: number;
  /** Experts chosen per token k (`moe_router_topk`). 1 ≤ k ≤ numExperts. Default 2. */
  topk: number;
  /** Score function turning logits into scores (`moe_router_score_function`). Default 'softmax'. */
  routerScoreFunction: RouterScoreFunction;
  /**
   * Softmax over all experts before top-k instead of softmax over the chosen k
   * (`moe_router_pre_softmax`). Required with softmax scores when topk is 1. Default false.
   */
  routerPreSoftmax: boolean;
  /** Expert groups for group-limited routing (`moe_router_num_groups`); null = off. */
  routerNumGroups: number | null;
  /** Groups kept per token in group-limited routing (`moe_router_group_topk`); null = off. */
  routerGroupTopk: number | null;
  /** Multiplier on the routing probabilities (`moe_router_topk_scaling_factor`); null = 1. */
  routerTopkScalingFactor: number | null;
  /**
   * Aux-loss-free load balancing (DeepSeek-V3): a per-expert bias added to the scores for the
   * top-k choice only (`moe_router_enable_expert_bias`). Needs sigmoid or sqrtsoftplus scores.
   */
  routerEnableExpertBias: boolean;
  /** Step of the expert-bias update per global batch (`moe_router_bias_update_rate`). Default 1e-3. */
  routerBiasUpdateRate: number;
  /**
   * Load-balancing type, or a list of types combined, each with its own entry of
   * `auxLossCoeff` (`moe_router_load_balancing_type`). Default 'aux_loss'.
   */
  routerLoadBalancingType: LoadBalancingType | LoadBalancingType[];
  /**
   * Aux-loss coefficient; a list of the same length when `routerLoadBalancingType` is a list
   * (`moe_aux_loss_coeff`). 0 disables. Default 0.
   */
  auxLossCoeff: number | number[];
  /** Router z-loss coefficient (`moe_z_loss_coeff`); null disables. */
  zLossCoeff: number | null;
  /** Multiplicative uniform jitter in [1−eps, 1+eps] on the router input (`moe_input_jitter_eps`); null = off. */
  inputJitterEps: number | null;
  // ---- capacity ------------------------------------------------------------------------
  /**
   * Expert capacity factor (`moe_expert_capacity_factor`): capacity = ceil(T·k / E · factor).
   * null = dropless. A negative value means dropless, as in Megatron.
   */
  capacityFactor: number | null;
  /** Pad every expert's input to its capacity (`moe_pad_expert_input_to_capacity`). Needs capacityFactor. */
  padToCapacity: boolean;
  /** Which tokens an over-full expert keeps (`moe_token_drop_policy`). Default 'probs'. */
  dropPolicy: DropPolicy;
  /**
   * Pad each expert's row count up to a multiple of this, for low-precision GEMMs
   * (`moe_router_padding_for_quantization` with the recipe's alignment: 16 FP8, 32 MXFP8,
   * 128 NVFP4). null = no padding.
   */
  padExpertRowsToMultiple: number | null;
  // ---- expert MLPs ---------------------------------------------------------------------
  /** Model hidden size H (`hidden_size`). */
  hiddenSize: number;
  /** Each routed expert's FFN width F (`moe_ffn_hidden_size`). Default 4 · hiddenSize (Megatron's ffn_hidden_size default). */
  ffnHiddenSize: number;
  /** Expert activation; SwiGLU makes fc1 2·F wide (`gated_linear_unit` + `activation_func`). Default 'swiglu'. */
  activation: ExpertActivation;
  /** Run all local experts as one grouped GEMM (`moe_grouped_gemm`). Default true. */
  groupedGemm: boolean;
  /**
   * Total FFN width of the shared experts = count × width of each
   * (`moe_shared_expert_intermediate_size`); null = none.
   */
  sharedExpertSize: number | null;
  /** Gate the shared experts' output with sigmoid(x·w) (`moe_shared_expert_gate`). Needs sharedExpertSize. */
  sharedExpertGate: boolean;
  /** Overlap shared-expert compute with the all-to-all (`moe_shared_expert_overlap`). Needs 'alltoall'. */
  sharedExpertOverlap: boolean;
  /** Token dispatcher over the expert-parallel group (`moe_token_dispatcher_type`). Default 'alltoall'. */
  tokenDispatcherType: TokenDispatcherType;
  // ---- parallelism (Parallel Folding) ---------------------------------------------------
  /** Expert-parallel size (`expert_model_parallel_size`). Divides numExperts. */
  ep: number;
  /** Tensor-parallel size of attention (`tensor_model_parallel_size`). */
  tp: number;
  /** Tensor-parallel size of the experts (`expert_tensor_parallel_size`); defaults to tp. */
  etp: number;
  /** Data-parallel size of attention; the world is tp·cp·dp·pp. */
  dp: number;
  /** Pipeline-parallel size (`pipeline_model_parallel_size`). */
  pp: number;
  /** Context-parallel size (`context_parallel_size`). */
  cp: number;
  /** Rank order for both rank generators (`order`). Default 'tp-cp-ep-dp-pp'. */
  order: string;
  // ---- memory --------------------------------------------------------------------------
  /** Modules re-run in backward instead of keeping their activations (`recompute_modules`). */
  recomputeModules: RecomputeModule[];
  /** Modules whose inputs are moved off the compute backend until backward (`offload_modules`). */
  offloadModules: OffloadModule[];
  // ---- low precision -------------------------------------------------------------------
  /** FP8 format for the expert GEMMs (`fp8`); null = off. Exclusive with fp4. */
  fp8: Fp8Format | null;
  /** FP8 scaling recipe (`fp8_recipe`). Default 'delayed'. */
  fp8Recipe: Fp8RecipeName;
  /** Delayed scaling: scale = (fmax / amax) / 2^margin (`fp8_margin`). Default 0. */
  fp8Margin: number;
  /** Delayed scaling: amax history length (`fp8_amax_history_len`). Default 1. */
  fp8AmaxHistoryLen: number;
  /** Delayed scaling: amax from the history's 'max' or 'most_recent' entry (`fp8_amax_compute_algo`). */
  fp8AmaxComputeAlgo: AmaxComputeAlgo;
  /** FP4 format for the expert GEMMs (`fp4`); only 'e2m1' (NVFP4). null = off. */
  fp4: 'e2m1' | null;
  /** FP4 recipe (`fp4_recipe`); only 'nvfp4'. */
  fp4Recipe: 'nvfp4';
  // ---- loss bookkeeping ----------------------------------------------------------------
  /**
   * The main loss is a sum over tokens divided later by the global token count
   * (`calculate_per_token_loss`); aux losses are then pre-multiplied by the local token count.
   */
  calculatePerTokenLoss: boolean;
  /** Number of transformer layers, for per-layer loss logging and the estimator (`num_layers`). */
  numLayers: number;
}

/** What a user passes: the required sizes, everything else optional. */
export type MoEConfigInput = Partial<MoEConfig> & Pick<MoEConfig, 'numExperts' | 'hiddenSize'>;

/** One problem found in a config: the field and why. */
export interface MoEConfigIssue {
  field: keyof MoEConfig;
  message: string;
}

/** Thrown by `validateMoEConfig`; `issues` lists every problem, the message names each field. */
export class MoEConfigError extends Error {
  readonly issues: MoEConfigIssue[];
  constructor(issues: MoEConfigIssue[]) {
    super(`invalid MoEConfig: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
    this.name = 'MoEConfigError';
    this.issues = issues;
  }
  /** The first offending field. */
  get field(): keyof MoEConfig {
    return this.issues[0]!.field;
  }
}

export const LOAD_BALANCING_TYPES: readonly LoadBalancingType[] = [
  'aux_loss',
  'seq_aux_loss',
  'global_aux_loss',
  'sinkhorn',
  'none',
];
export const RECOMPUTE_MODULES: readonly RecomputeModule[] = ['moe_act', 'experts', 'shared_experts', 'moe'];
export const OFFLOAD_MODULES: readonly OffloadModule[] = ['expert_fc1', 'moe_act', 'fused_group_mlp'];

/** Megatron's defaults (TransformerConfig), with Kiln's for fields Megatron leaves to the caller. */
export const MOE_CONFIG_DEFAULTS: Omit<MoEConfig, 'numExperts' | 'hiddenSize' | 'ffnHiddenSize' | 'etp'> = {
  topk: 2,
  routerScoreFunction: 'softmax',
  routerPreSoftmax: false,
  routerNumGroups: null,
  routerGroupTopk: null,
  routerTopkScalingFactor: null,
  routerEnableExpertBias: false,
  routerBiasUpdateRate: 1e-3,
  routerLoadBalancingType: 'aux_loss',
  auxLossCoeff: 0,
  zLossCoeff: null,
  inputJitterEps: null,
  capacityFactor: null,
  padToCapacity: false,
  dropPolicy: 'probs',
  padExpertRowsToMultiple: null,
  activation: 'swiglu',
  groupedGemm: true,
  sharedExpertSize: null,
  sharedExpertGate: false,
  sharedExpertOverlap: false,
  tokenDispatcherType: 'alltoall',
  ep: 1,
  tp: 1,
  dp: 1,
  pp: 1,
  cp: 1,
  order: 'tp-cp-ep-dp-pp',
  recomputeModules: [],
  offloadModules: [],
  fp8: null,
  fp8Recipe: 'delayed',
  fp8Margin: 0,
  fp8AmaxHistoryLen: 1,
  fp8AmaxComputeAlgo: 'most_recent',
  fp4: null,
  fp4Recipe: 'nvfp4',
  calculatePerTokenLoss: false,
  numLayers: 1,
};

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The load-balancing types of a config as a list. */
export function loadBalancingTypes(config: Pick<MoEConfig, 'routerLoadBalancingType'>): LoadBalancingType[] {
  const t = config.routerLoadBalancingType;
  return Array.isArray(t) ? [...t] : [t];
}

/**
 * The coefficient of one aux-loss type, as Megatron's `Router.get_aux_loss_coeff`: the scalar
 * coefficient when the type is the single configured type, the matching list entry when
 * types are a list, else 0.
 */
export function auxLossCoeffFor(
  config: Pick<MoEConfig, 'routerLoadBalancingType' | 'auxLossCoeff'>,
  type: LoadBalancingType,
): number {
  const t = config.routerLoadBalancingType;
  const c = config.auxLossCoeff;
  if (Array.isArray(t)) {
    const i = t.indexOf(type);
    if (i < 0) return 0;
    return Array.isArray(c) ? (c[i] ?? 0) : c;
  }
  if (t !== type) return 0;
  return Array.isArray(c) ? (c[0] ?? 0) : c;
}

/** Whether any of aux_loss / seq_aux_loss / global_aux_loss has a positive coefficient. */
export function isAuxLossEnabled(config: Pick<MoEConfig, 'routerLoadBalancingType' | 'auxLossCoeff'>): boolean {
  return (['aux_loss', 'seq_aux_loss', 'global_aux_loss'] as const).some((t) => auxLossCoeffFor(config, t) > 0);
}

/** Whether Sinkhorn routing replaces top-k routing (only as the single type, as in Megatron). */
export function usesSinkhorn(config: Pick<MoEConfig, 'routerLoadBalancingType'>): boolean {
  return config.routerLoadBalancingType === 'sinkhorn';
}

/** The row alignment the configured low-precision recipe needs (Megatron's get_fp8/fp4_align_size), or 1. */
export function quantizationAlignSize(config: Pick<MoEConfig, 'fp8' | 'fp8Recipe' | 'fp4'>): number {
  if (config.fp4) return 128;
  if (config.fp8) return config.fp8Recipe === 'mxfp8' ? 32 : 16;
  return 1;
}

/** All problems of a config (defaults already applied); empty when valid. */
export function checkMoEConfig(c: MoEConfig): MoEConfigIssue[] {
  const issues: MoEConfigIssue[] = [];
  const bad = (field: keyof MoEConfig, message: string) => issues.push({ field, message });
  const known = new Set<string>([...Object.keys(MOE_CONFIG_DEFAULTS), 'numExperts', 'hiddenSize', 'ffnHiddenSize', 'etp']);
  for (const k of Object.keys(c)) {
    if (!known.has(k)) bad(k as keyof MoEConfig, `unknown field '${k}'`);
  }

  for (const f of ['numExperts', 'topk', 'hiddenSize', 'ffnHiddenSize', 'ep', 'tp', 'etp', 'dp', 'pp', 'cp', 'numLayers'] as const) {
    if (!isPosInt(c[f])) bad(f, `must be a positive integer, got ${String(c[f])}`);
  }
  if (isPosInt(c.numExperts) && isPosInt(c.topk) && c.topk > c.numExperts) {
    bad('topk', `topk (${c.topk}) must be ≤ numExperts (${c.numExperts})`);
  }
  if (!['softmax', 'sigmoid', 'sqrtsoftplus'].includes(c.routerScoreFunction)) {
    bad('routerScoreFunction', `must be 'softmax', 'sigmoid' or 'sqrtsoftplus', got '${String(c.routerScoreFunction)}'`);
  }
  if (typeof c.routerPreSoftmax !== 'boolean') bad('routerPreSoftmax', 'must be a boolean');

  // Group-limited routing (Megatron TransformerConfig.__post_init__ checks, plus feasibility).
  if (c.routerGroupTopk !== null) {
    if (!isPosInt(c.routerGroupTopk)) bad('routerGroupTopk', `must be a positive integer or null, got ${String(c.routerGroupTopk)}`);
    if (c.routerNumGroups === null) {
      bad('routerNumGroups', 'must be set when routerGroupTopk is set (group-limited routing)');
    } else if (!isPosInt(c.routerNumGroups)) {
      bad('routerNumGroups', `must be a positive integer or null, got ${String(c.routerNumGroups)}`);
    } else {
      if (isPosInt(c.numExperts) && c.numExperts % c.routerNumGroups !== 0) {
        bad('routerNumGroups', `numExperts (${c.numExperts}) must be divisible by routerNumGroups (${c.routerNumGroups})`);
      }
      if (isPosInt(c.routerGroupTopk) && c.routerGroupTopk > c.routerNumGroups) {
        bad('routerGroupTopk', `routerGroupTopk (${c.routerGroupTopk}) must be ≤ routerNumGroups (${c.routerNumGroups})`);
      }
      if (isPosInt(c.routerGroupTopk) && isPosInt(c.topk) && c.topk < c.routerGroupTopk) {
        bad('routerGroupTopk', `group score sums the top (topk / routerGroupTopk) experts; topk (${c.topk}) < routerGroupTopk (${c.routerGroupTopk}) makes it 0`);
      }
      if (
        isPosInt(c.routerGroupTopk) &&
        isPosInt(c.numExperts) &&
        c.numExperts % c.routerNumGroups === 0 &&
        c.routerGroupTopk * (c.numExperts / c.routerNumGroups) < c.topk
      ) {
        bad('routerGroupTopk', `the kept groups hold ${c.routerGroupTopk * (c.numExperts / c.routerNumGroups)} experts, fewer than topk (${c.topk})`);
      }
    }
  } else if (c.routerNumGroups !== null && !isPosInt(c.routerNumGroups)) {
    bad('routerNumGroups', `must be a positive integer or null, got ${String(c.routerNumGroups)}`);
  }

  if (c.routerTopkScalingFactor !== null && !(isFiniteNum(c.routerTopkScalingFactor) && c.routerTopkScalingFactor > 0)) {
    bad('routerTopkScalingFactor', `must be a positive number or null, got ${String(c.routerTopkScalingFactor)}`);
  }
  if (c.routerEnableExpertBias && c.routerScoreFunction === 'softmax') {
    bad('routerEnableExpertBias', "expert bias (aux-loss-free routing) needs routerScoreFunction 'sigmoid' or 'sqrtsoftplus', not 'softmax'");
  }
  if (!(isFiniteNum(c.routerBiasUpdateRate) && c.routerBiasUpdateRate >= 0)) {
    bad('routerBiasUpdateRate', `must be a number ≥ 0, got ${String(c.routerBiasUpdateRate)}`);
  }

  // Load balancing types and coefficients.
  const types = loadBalancingTypes(c);
  for (const t of types) {
    if (!LOAD_BALANCING_TYPES.includes(t)) bad('routerLoadBalancingType', `unknown type '${String(t)}'; use one of ${LOAD_BALANCING_TYPES.join(', ')}`);
  }
  if (Array.isArray(c.routerLoadBalancingType)) {
    if (c.routerLoadBalancingType.length === 0) bad('routerLoadBalancingType', 'an empty list; use \'none\'');
    if (new Set(types).size !== types.length) bad('routerLoadBalancingType', 'lists a type twice');
    if (!Array.isArray(c.auxLossCoeff) || c.auxLossCoeff.length !== c.routerLoadBalancingType.length) {
      bad('auxLossCoeff', `must be a list of the same length as routerLoadBalancingType (${c.routerLoadBalancingType.length})`);
    }
    if (types.includes('sinkhorn')) {
      bad('routerLoadBalancingType', "'sinkhorn' replaces top-k routing and cannot be combined with other types");
    }
  } else if (Array.isArray(c.auxLossCoeff)) {
    bad('auxLossCoeff', 'is a list but routerLoadBalancingType is a single type');
  }
  const coeffs = Array.isArray(c.auxLossCoeff) ? c.auxLossCoeff : [c.auxLossCoeff];
  for (const v of coeffs) {
    if (!(isFiniteNum(v) && v >= 0)) bad('auxLossCoeff', `must be ≥ 0, got ${String(v)}`);
  }
  if (types.includes('sinkhorn') && coeffs.some((v) => v > 0)) {
    bad('auxLossCoeff', 'Sinkhorn routing does not support an aux loss: set auxLossCoeff to 0');
  }
  if (types.includes('sinkhorn') && c.routerEnableExpertBias) {
    bad('routerEnableExpertBias', 'expert bias does not apply to Sinkhorn routing');
  }
  if (types.includes('sinkhorn') && c.routerGroupTopk !== null) {
    bad('routerGroupTopk', 'group-limited routing does not apply to Sinkhorn routing');
  }
  if (c.zLossCoeff !== null && !(isFiniteNum(c.zLossCoeff) && c.zLossCoeff >= 0)) {
    bad('zLossCoeff', `must be a number ≥ 0 or null, got ${String(c.zLossCoeff)}`);
  }
  if (c.inputJitterEps !== null && !(isFiniteNum(c.inputJitterEps) && c.inputJitterEps > 0 && c.inputJitterEps < 1)) {
    bad('inputJitterEps', `must be in (0, 1) or null, got ${String(c.inputJitterEps)}`);
  }
  if (
    c.topk === 1 &&
    c.routerScoreFunction === 'softmax' &&
    !c.routerPreSoftmax &&
    c.routerLoadBalancingType !== 'sinkhorn'
  ) {
    bad('routerPreSoftmax', 'must be true when topk is 1 with softmax scores (softmax over one logit has zero gradient)');
  }

  // Capacity.
  if (c.capacityFactor !== null) {
    if (!(isFiniteNum(c.capacityFactor) && c.capacityFactor > 0)) {
      bad('capacityFactor', `must be a positive number or null (dropless), got ${String(c.capacityFactor)}`);
    }
    if (types.includes('sinkhorn')) {
      bad('capacityFactor', "only works with aux_loss, seq_aux_loss, global_aux_loss or none load balancing, not 'sinkhorn'");
    }
  }
  if (c.padToCapacity && c.capacityFactor === null) bad('padToCapacity', 'needs capacityFactor to be set');
  if (c.dropPolicy !== 'probs' && c.dropPolicy !== 'position') {
    bad('dropPolicy', `must be 'probs' or 'position', got '${String(c.dropPolicy)}'`);
  }
  if (c.padExpertRowsToMultiple !== null) {
    if (!isPosInt(c.padExpertRowsToMultiple)) {
      bad('padExpertRowsToMultiple', `must be a positive integer or null, got ${String(c.padExpertRowsToMultiple)}`);
    }
    if (c.tokenDispatcherType === 'allgather') {
      bad('padExpertRowsToMultiple', "is not supported by the 'allgather' dispatcher (as in Megatron)");
    }
    if (c.padToCapacity) bad('padExpertRowsToMultiple', 'cannot be combined with padToCapacity');
  }

  // Experts.
  if (c.activation !== 'swiglu' && c.activation !== 'gelu') bad('activation', `must be 'swiglu' or 'gelu', got '${String(c.activation)}'`);
  if (c.sharedExpertSize !== null && !isPosInt(c.sharedExpertSize)) {
    bad('sharedExpertSize', `must be a positive integer (shared experts × width) or null, got ${String(c.sharedExpertSize)}`);
  }
  if (c.sharedExpertGate && c.sharedExpertSize === null) bad('sharedExpertGate', 'needs sharedExpertSize');
  if (c.sharedExpertOverlap) {
    if (c.sharedExpertSize === null) bad('sharedExpertOverlap', 'needs sharedExpertSize');
    if (c.tokenDispatcherType !== 'alltoall') bad('sharedExpertOverlap', "only works with the 'alltoall' dispatcher");
  }
  if (c.tokenDispatcherType !== 'allgather' && c.tokenDispatcherType !== 'alltoall') {
    bad('tokenDispatcherType', `must be 'allgather' or 'alltoall', got '${String(c.tokenDispatcherType)}'`);
  }

  // Parallelism.
  if (isPosInt(c.numExperts) && isPosInt(c.ep) && c.numExperts % c.ep !== 0) {
    bad('ep', `numExperts (${c.numExperts}) must be divisible by ep (${c.ep})`);
  }
  if ([c.tp, c.cp, c.dp, c.pp, c.ep, c.etp].every(isPosInt)) {
    const world = c.tp * c.cp * c.dp * c.pp;
    const expertModel = c.etp * c.ep * c.pp;
    if (world % expertModel !== 0) {
      bad('ep', `world size tp·cp·dp·pp = ${world} is not divisible by etp·ep·pp = ${expertModel} (expert-data-parallel size must be an integer)`);
    } else if (!c.order.endsWith('pp') && c.pp > 1 && world / expertModel !== c.dp) {
      bad('order', 'when pp is not last in the order, attention and expert data-parallel sizes must be equal');
    }
  }
  if (typeof c.order !== 'string') {
    bad('order', 'must be a string such as tp-cp-ep-dp-pp');
  } else {
    const toks = c.order.toLowerCase().split('-');
    for (const t of toks) {
      if (!['tp', 'cp', 'ep', 'dp', 'pp'].includes(t)) bad('order', `unknown dimension '${t}' in '${c.order}'`);
    }
    if (new Set(toks).size !== toks.length) bad('order', `repeats a dimension: '${c.order}'`);
    for (const d of ['tp', 'cp', 'ep', 'dp', 'pp'] as const) {
      if (!toks.includes(d) && (c[d] as number) > 1) bad('order', `${d} is ${c[d]} but '${c.order}' does not name it`);
    }
    if (!toks.includes('tp') && c.etp > 1) bad('order', `etp is ${c.etp} but '${c.order}' does not name tp`);
  }

  // Memory.
  if (!Array.isArray(c.recomputeModules)) bad('recomputeModules', 'must be a list');
  else {
    for (const m of c.recomputeModules) {
      if (!RECOMPUTE_MODULES.includes(m)) bad('recomputeModules', `unknown module '${String(m)}'; use ${RECOMPUTE_MODULES.join(', ')}`);
    }
    if (c.recomputeModules.includes('moe_act') && !c.groupedGemm) bad('recomputeModules', "'moe_act' needs groupedGemm");
    if (c.recomputeModules.includes('shared_experts') && c.sharedExpertOverlap) {
      bad('recomputeModules', "'shared_experts' recompute cannot work with sharedExpertOverlap");
    }
    if (c.fp8 && c.fp8Recipe === 'delayed' && c.recomputeModules.includes('moe_act')) {
      bad('recomputeModules', "delayed FP8 scaling does not support 'moe_act' recompute");
    }
  }
  if (!Array.isArray(c.offloadModules)) bad('offloadModules', 'must be a list');
  else {
    for (const m of c.offloadModules) {
      if (!OFFLOAD_MODULES.includes(m)) bad('offloadModules', `unknown module '${String(m)}'; use ${OFFLOAD_MODULES.join(', ')}`);
    }
  }

  // Low precision.
  if (c.fp8 !== null && c.fp8 !== 'e4m3' && c.fp8 !== 'hybrid') bad('fp8', `must be 'e4m3', 'hybrid' or null, got '${String(c.fp8)}'`);
  if (!['delayed', 'tensorwise', 'blockwise', 'mxfp8'].includes(c.fp8Recipe)) {
    bad('fp8Recipe', `must be 'delayed', 'tensorwise', 'blockwise' or 'mxfp8', got '${String(c.fp8Recipe)}'`);
  }
  if (!(Number.isInteger(c.fp8Margin) && c.fp8Margin >= 0)) bad('fp8Margin', `must be an integer ≥ 0, got ${String(c.fp8Margin)}`);
  if (!isPosInt(c.fp8AmaxHistoryLen)) bad('fp8AmaxHistoryLen', `must be a positive integer, got ${String(c.fp8AmaxHistoryLen)}`);
  if (c.fp8AmaxComputeAlgo !== 'max' && c.fp8AmaxComputeAlgo !== 'most_recent') {
    bad('fp8AmaxComputeAlgo', `must be 'max' or 'most_recent', got '${String(c.fp8AmaxComputeAlgo)}'`);
  }
  if (c.fp4 !== null && c.fp4 !== 'e2m1') bad('fp4', `must be 'e2m1' or null, got '${String(c.fp4)}'`);
  if (c.fp4Recipe !== 'nvfp4') bad('fp4Recipe', `must be 'nvfp4', got '${String(c.fp4Recipe)}'`);
  if (c.fp4 !== null && c.fp8 !== null) bad('fp4', 'fp4 and fp8 cannot both be enabled');
  return issues;
}

/**
 * Fill Megatron's defaults, normalise (negative capacityFactor → dropless, etp → tp when
 * unset), check every field and combination, and return the complete config. Throws
 * `MoEConfigError` naming each offending field.
 */
export function validateMoEConfig(input: MoEConfigInput): MoEConfig {
  if (input === null || typeof input !== 'object') {
    throw new MoEConfigError([{ field: 'numExperts', message: 'config must be an object' }]);
  }
  const merged = { ...MOE_CONFIG_DEFAULTS, etp: input.tp ?? 1, ...input } as MoEConfig;
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) (merged as unknown as Record<string, unknown>)[k] = (MOE_CONFIG_DEFAULTS as unknown as Record<string, unknown>)[k];
  }
  if (input.etp === undefined) merged.etp = merged.tp;
  if (input.ffnHiddenSize === undefined && typeof merged.hiddenSize === 'number') merged.ffnHiddenSize = 4 * merged.hiddenSize;
  if (typeof merged.capacityFactor === 'number' && merged.capacityFactor < 0) merged.capacityFactor = null;
  merged.recomputeModules = Array.isArray(merged.recomputeModules) ? [...merged.recomputeModules] : merged.recomputeModules;
  merged.offloadModules = Array.isArray(merged.offloadModules) ? [...merged.offloadModules] : merged.offloadModules;
  const issues = checkMoEConfig(merged);
  if (issues.length > 0) throw new MoEConfigError(issues);
  return merged;
}

/** Alias of `validateMoEConfig` for call sites that read better as construction. */
export const createMoEConfig = validateMoEConfig;

/** The expert-data-parallel size of a config: world / (etp · ep · pp). */
export function expertDataParallelSize(c: Pick<MoEConfig, 'tp' | 'cp' | 'dp' | 'pp' | 'etp' | 'ep'>): number {
  return (c.tp * c.cp * c.dp * c.pp) / (c.etp * c.ep * c.pp);
}

/** Local experts per expert-parallel rank. */
export function numLocalExperts(c: Pick<MoEConfig, 'numExperts' | 'ep'>): number {
  return c.numExperts / c.ep;
}

/**
 * The Megatron-LM command-line flag of each field (`--moe-router-topk` for `topk`, …), for
 * translating a config to and from Megatron launch scripts. Fields without a Megatron flag
 * (Kiln-only) are absent.
 */
export const MEGATRON_FLAGS: Partial<Record<keyof MoEConfig, string>> = {
  numExperts: '--num-experts',
  topk: '--moe-router-topk',
  routerScoreFunction: '--moe-router-score-function',
  routerPreSoftmax: '--moe-router-pre-softmax',
  routerNumGroups: '--moe-router-num-groups',
  routerGroupTopk: '--moe-router-group-topk',
  routerTopkScalingFactor: '--moe-router-topk-scaling-factor',
  routerEnableExpertBias: '--moe-router-enable-expert-bias',
  routerBiasUpdateRate: '--moe-router-bias-update-rate',
  routerLoadBalancingType: '--moe-router-load-balancing-type',
  auxLossCoeff: '--moe-aux-loss-coeff',
  zLossCoeff: '--moe-z-loss-coeff',
  inputJitterEps: '--moe-input-jitter-eps',
  capacityFactor: '--moe-expert-capacity-factor',
  padToCapacity: '--moe-pad-expert-input-to-capacity',
  dropPolicy: '--moe-token-drop-policy',
  hiddenSize: '--hidden-size',
  ffnHiddenSize: '--moe-ffn-hidden-size',
  groupedGemm: '--moe-grouped-gemm',
  sharedExpertSize: '--moe-shared-expert-intermediate-size',
  sharedExpertGate: '--moe-shared-expert-gate',
  sharedExpertOverlap: '--moe-shared-expert-overlap',
  tokenDispatcherType: '--moe-token-dispatcher-type',
  ep: '--expert-model-parallel-size',
  tp: '--tensor-model-parallel-size',
  etp: '--expert-tensor-parallel-size',
  pp: '--pipeline-model-parallel-size',
  cp: '--context-parallel-size',
  recomputeModules: '--recompute-modules',
  offloadModules: '--offload-modules',
  fp8: '--fp8-format',
  fp8Recipe: '--fp8-recipe',
  fp8Margin: '--fp8-margin',
  fp8AmaxHistoryLen: '--fp8-amax-history-len',
  fp8AmaxComputeAlgo: '--fp8-amax-compute-algo',
  fp4: '--fp4-format',
  fp4Recipe: '--fp4-recipe',
  calculatePerTokenLoss: '--calculate-per-token-loss',
  numLayers: '--num-layers',
};

/**
 * Megatron-LM flags for the fields that differ from Megatron's defaults (booleans as bare
 * flags when true, lists space-separated). `padExpertRowsToMultiple` becomes
 * `--moe-router-padding-for-quantization` when it equals the recipe's alignment.
 */
export function toMegatronArgs(config: MoEConfig): string[] {
  const args: string[] = [];
  const defaults = MOE_CONFIG_DEFAULTS as unknown as Record<string, unknown>;
  for (const [field, flag] of Object.entries(MEGATRON_FLAGS) as [keyof MoEConfig, string][]) {
    const v = config[field] as unknown;
    if (v === null || v === undefined) continue;
    if (field in defaults && JSON.stringify(defaults[field]) === JSON.stringify(v) && field !== 'numExperts') continue;
    if (field === 'etp' && v === config.tp) continue;
    if (typeof v === 'boolean') {
      if (v) args.push(flag);
      continue;
    }
    if (Array.isArray(v)) {
      if (v.length > 0) args.push(flag, ...v.map(String));
      continue;
    }
    args.push(flag, String(v));
  }
  if (config.padExpertRowsToMultiple !== null && config.padExpertRowsToMultiple === quantizationAlignSize(config)) {
    args.push('--moe-router-padding-for-quantization');
  }
  return args;
}
