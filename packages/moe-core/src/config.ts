/**
 * The one validated configuration object of an MoE layer. Field names are Megatron-Core's
 * `moe_*` / parallelism arguments in camelCase with the `moe` prefix dropped, so users of
 * Megatron recognise every knob. Each field's type, default, range and doc live once in
 * `MOE_CONFIG_FIELDS` (config-fields.ts); `validateMoEConfig` checks values against that table,
 * fills its defaults, checks the combinations Megatron checks, and throws an error that names
 * every offending field.
 */
import { ConfigError, type FieldSpec, checkValue, fieldDefaults, isConfigError } from '@kiln/tensor';
import { LOAD_BALANCING_TYPES, MOE_CONFIG_FIELDS, MOE_CONFIG_KEYS, type MoEConfigKey, OFFLOAD_MODULES, RECOMPUTE_MODULES } from './config-fields.js';

export { LOAD_BALANCING_TYPES, MOE_CONFIG_FIELDS, MOE_CONFIG_KEYS, OFFLOAD_MODULES, RECOMPUTE_MODULES };
export type { MoEConfigKey };

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

/** What a user passes: the required sizes, everything else optional (null asks for the derived default). */
export type MoEConfigInput = { [K in keyof MoEConfig]?: MoEConfig[K] | (K extends 'ffnHiddenSize' | 'etp' ? null : never) } & Pick<MoEConfig, 'numExperts' | 'hiddenSize'>;

// The interface and the field table name the same keys (a compile-time check).
type SameKeys<A, B> = [Exclude<A, B>, Exclude<B, A>] extends [never, never] ? true : never;
const tableMatchesInterface: SameKeys<keyof MoEConfig, MoEConfigKey> = true;
void tableMatchesInterface;

/** One problem found in a config: the field and why. */
export interface MoEConfigIssue {
  field: keyof MoEConfig;
  message: string;
}

/**
 * Thrown by `validateMoEConfig`; `issues` lists every problem, the message names each field.
 * A @kiln/tensor `ConfigError`, so command lines report it as a usage error.
 */
export class MoEConfigError extends ConfigError {
  override name = 'MoEConfigError';
  readonly issues: MoEConfigIssue[];
  constructor(issues: MoEConfigIssue[]) {
    super(`invalid MoEConfig: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, issues[0]?.field);
    this.issues = issues;
  }
  /** The first offending field. */
  get field(): keyof MoEConfig {
    return this.issues[0]!.field;
  }
}

/**
 * The table's defaults for every field that has a fixed one (`ffnHiddenSize` and `etp` are
 * derived: 4 × hiddenSize and tp).
 */
export const MOE_CONFIG_DEFAULTS = fieldDefaults(MOE_CONFIG_FIELDS) as unknown as Omit<MoEConfig, 'numExperts' | 'hiddenSize' | 'ffnHiddenSize' | 'etp'>;

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

/** Each value checked against its field in the table: type, range, allowed values. */
function fieldIssues(c: Record<string, unknown>): MoEConfigIssue[] {
  const issues: MoEConfigIssue[] = [];
  for (const key of Object.keys(c)) {
    if (!Object.hasOwn(MOE_CONFIG_FIELDS, key)) {
      issues.push({ field: key as keyof MoEConfig, message: `unknown field '${key}'; fields: ${MOE_CONFIG_KEYS.join(', ')}` });
      continue;
    }
    try {
      checkValue((MOE_CONFIG_FIELDS as Record<string, FieldSpec>)[key]!, c[key], '', key);
    } catch (err) {
      if (!isConfigError(err)) throw err;
      issues.push({ field: key as keyof MoEConfig, message: err.message.trim() });
    }
  }
  for (const key of MOE_CONFIG_KEYS) {
    if (c[key] === undefined) issues.push({ field: key, message: `is required (${MOE_CONFIG_FIELDS[key].doc})` });
  }
  return issues;
}

/**
 * All problems of a complete config (defaults applied and derived values filled); empty when
 * valid. First every value against its field, then the combinations: Megatron's
 * `TransformerConfig.__post_init__` checks plus a few feasibility checks.
 */
export function checkMoEConfig(c: MoEConfig): MoEConfigIssue[] {
  const perField = fieldIssues(c as unknown as Record<string, unknown>);
  if (perField.length > 0) return perField;
  const issues: MoEConfigIssue[] = [];
  const bad = (field: keyof MoEConfig, message: string) => issues.push({ field, message });

  // Routing.
  if (c.topk > c.numExperts) bad('topk', `topk (${c.topk}) must be ≤ numExperts (${c.numExperts})`);
  if (c.routerGroupTopk !== null) {
    if (c.routerNumGroups === null) {
      bad('routerNumGroups', 'must be set when routerGroupTopk is set (group-limited routing)');
    } else {
      if (c.numExperts % c.routerNumGroups !== 0) {
        bad('routerNumGroups', `numExperts (${c.numExperts}) must be divisible by routerNumGroups (${c.routerNumGroups})`);
      }
      if (c.routerGroupTopk > c.routerNumGroups) {
        bad('routerGroupTopk', `routerGroupTopk (${c.routerGroupTopk}) must be ≤ routerNumGroups (${c.routerNumGroups})`);
      }
      if (c.topk < c.routerGroupTopk) {
        bad('routerGroupTopk', `group score sums the top (topk / routerGroupTopk) experts; topk (${c.topk}) < routerGroupTopk (${c.routerGroupTopk}) makes it 0`);
      }
      if (c.numExperts % c.routerNumGroups === 0 && c.routerGroupTopk * (c.numExperts / c.routerNumGroups) < c.topk) {
        bad('routerGroupTopk', `the kept groups hold ${c.routerGroupTopk * (c.numExperts / c.routerNumGroups)} experts, fewer than topk (${c.topk})`);
      }
    }
  }
  if (c.routerEnableExpertBias && c.routerScoreFunction === 'softmax') {
    bad('routerEnableExpertBias', "expert bias (aux-loss-free routing) needs routerScoreFunction 'sigmoid' or 'sqrtsoftplus', not 'softmax'");
  }

  // Load-balancing types and coefficients.
  const types = loadBalancingTypes(c);
  if (Array.isArray(c.routerLoadBalancingType)) {
    if (c.routerLoadBalancingType.length === 0) bad('routerLoadBalancingType', "an empty list; use 'none'");
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
  if (types.includes('sinkhorn') && coeffs.some((v) => v > 0)) {
    bad('auxLossCoeff', 'Sinkhorn routing does not support an aux loss: set auxLossCoeff to 0');
  }
  if (types.includes('sinkhorn') && c.routerEnableExpertBias) {
    bad('routerEnableExpertBias', 'expert bias does not apply to Sinkhorn routing');
  }
  if (types.includes('sinkhorn') && c.routerGroupTopk !== null) {
    bad('routerGroupTopk', 'group-limited routing does not apply to Sinkhorn routing');
  }
  if (c.topk === 1 && c.routerScoreFunction === 'softmax' && !c.routerPreSoftmax && c.routerLoadBalancingType !== 'sinkhorn') {
    bad('routerPreSoftmax', 'must be true when topk is 1 with softmax scores (softmax over one logit has zero gradient)');
  }

  // Capacity.
  if (c.capacityFactor !== null) {
    if (!(c.capacityFactor > 0)) bad('capacityFactor', `must be a positive number or null (dropless), got ${c.capacityFactor}`);
    if (types.includes('sinkhorn')) {
      bad('capacityFactor', "only works with aux_loss, seq_aux_loss, global_aux_loss or none load balancing, not 'sinkhorn'");
    }
  }
  if (c.padToCapacity && c.capacityFactor === null) bad('padToCapacity', 'needs capacityFactor to be set');
  if (c.padExpertRowsToMultiple !== null) {
    if (c.tokenDispatcherType === 'allgather') {
      bad('padExpertRowsToMultiple', "is not supported by the 'allgather' dispatcher (as in Megatron)");
    }
    if (c.padToCapacity) bad('padExpertRowsToMultiple', 'cannot be combined with padToCapacity');
  }

  // Experts.
  if (c.sharedExpertGate && c.sharedExpertSize === null) bad('sharedExpertGate', 'needs sharedExpertSize');
  if (c.sharedExpertOverlap) {
    if (c.sharedExpertSize === null) bad('sharedExpertOverlap', 'needs sharedExpertSize');
    if (c.tokenDispatcherType !== 'alltoall') bad('sharedExpertOverlap', "only works with the 'alltoall' dispatcher");
  }

  // Parallelism.
  if (c.numExperts % c.ep !== 0) bad('ep', `numExperts (${c.numExperts}) must be divisible by ep (${c.ep})`);
  const world = c.tp * c.cp * c.dp * c.pp;
  const expertModel = c.etp * c.ep * c.pp;
  if (world % expertModel !== 0) {
    bad('ep', `world size tp·cp·dp·pp = ${world} is not divisible by etp·ep·pp = ${expertModel} (expert-data-parallel size must be an integer)`);
  } else if (!c.order.endsWith('pp') && c.pp > 1 && world / expertModel !== c.dp) {
    bad('order', 'when pp is not last in the order, attention and expert data-parallel sizes must be equal');
  }
  const dims = c.order.toLowerCase().split('-');
  for (const d of dims) {
    if (!['tp', 'cp', 'ep', 'dp', 'pp'].includes(d)) bad('order', `unknown dimension '${d}' in '${c.order}'`);
  }
  if (new Set(dims).size !== dims.length) bad('order', `repeats a dimension: '${c.order}'`);
  for (const d of ['tp', 'cp', 'ep', 'dp', 'pp'] as const) {
    if (!dims.includes(d) && c[d] > 1) bad('order', `${d} is ${c[d]} but '${c.order}' does not name it`);
  }
  if (!dims.includes('tp') && c.etp > 1) bad('order', `etp is ${c.etp} but '${c.order}' does not name tp`);

  // Memory (Megatron's recompute_modules checks).
  if (c.recomputeModules.includes('moe_act') && !c.groupedGemm) bad('recomputeModules', "'moe_act' needs groupedGemm (as in Megatron)");
  if (c.recomputeModules.includes('shared_experts') && c.sharedExpertOverlap) {
    bad('recomputeModules', "'shared_experts' recompute cannot work with sharedExpertOverlap");
  }
  if (c.fp8 && c.fp8Recipe === 'delayed' && c.recomputeModules.includes('moe_act')) {
    bad('recomputeModules', "delayed FP8 scaling does not support 'moe_act' recompute (as in Megatron); use another fp8Recipe");
  }

  // Low precision.
  if (c.fp4 !== null && c.fp8 !== null) bad('fp4', 'fp4 and fp8 cannot both be enabled');
  return issues;
}

/**
 * Fill the defaults, normalise as Megatron does (negative capacityFactor → dropless, etp → tp
 * and ffnHiddenSize → 4 × hiddenSize when unset, one-element lists of load-balancing types and
 * coefficients → the element), check every field and combination, and return the complete
 * config. Throws `MoEConfigError` naming each offending field.
 */
export function validateMoEConfig(input: MoEConfigInput): MoEConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new MoEConfigError([{ field: 'numExperts', message: 'config must be an object' }]);
  }
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const merged = { ...MOE_CONFIG_DEFAULTS, ...given } as Record<string, unknown>;
  // Each given value must fit its field before anything is derived from it.
  const early = fieldIssues({ ...merged, ffnHiddenSize: merged.ffnHiddenSize ?? null, etp: merged.etp ?? null });
  if (early.length > 0) throw new MoEConfigError(early);
  const c = merged as unknown as MoEConfig;
  if (c.etp === null || c.etp === undefined) c.etp = c.tp;
  if (c.ffnHiddenSize === null || c.ffnHiddenSize === undefined) c.ffnHiddenSize = 4 * c.hiddenSize;
  if (c.capacityFactor !== null && c.capacityFactor < 0) c.capacityFactor = null;
  if (Array.isArray(c.routerLoadBalancingType) && c.routerLoadBalancingType.length === 1) c.routerLoadBalancingType = c.routerLoadBalancingType[0]!;
  if (Array.isArray(c.auxLossCoeff) && c.auxLossCoeff.length === 1 && !Array.isArray(c.routerLoadBalancingType)) c.auxLossCoeff = c.auxLossCoeff[0]!;
  for (const k of ['routerLoadBalancingType', 'auxLossCoeff', 'recomputeModules', 'offloadModules'] as const) {
    const v = c[k];
    if (Array.isArray(v)) (c as unknown as Record<string, unknown>)[k] = [...v];
  }
  const issues = checkMoEConfig(c);
  if (issues.length > 0) throw new MoEConfigError(issues);
  return c;
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
