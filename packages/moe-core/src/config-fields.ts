/**
 * The field table of `MoEConfig`: every knob declared once — type, default, range, doc — in
 * @kiln/tensor's `FieldTable` form. `validateMoEConfig` checks each value against it and fills
 * its defaults; the `kiln moe train` command derives one flag (the key in kebab-case) and one
 * config-file key per field, and its `--help`, from the same table. Defaults are Megatron-Core's
 * (`TransformerConfig`) except where Kiln's differ, which the docs say (grouped GEMM on, the
 * all-to-all dispatcher, SwiGLU experts).
 */
import type { FieldTable } from '@kiln/tensor';

export const LOAD_BALANCING_TYPES = ['aux_loss', 'seq_aux_loss', 'global_aux_loss', 'sinkhorn', 'none'] as const;
export const RECOMPUTE_MODULES = ['moe_act', 'experts', 'shared_experts', 'moe'] as const;
export const OFFLOAD_MODULES = ['expert_fc1', 'moe_act', 'fused_group_mlp'] as const;

export const MOE_CONFIG_FIELDS = {
  // ---- experts and routing -------------------------------------------------------------
  numExperts: { type: 'int', min: 1, required: true, doc: 'routed experts E (num_moe_experts); divisible by ep' },
  topk: { type: 'int', min: 1, default: 2, doc: 'experts chosen per token k (moe_router_topk), at most numExperts' },
  routerScoreFunction: {
    type: 'enum',
    values: ['softmax', 'sigmoid', 'sqrtsoftplus'],
    default: 'softmax',
    doc: 'score function turning router logits into scores (moe_router_score_function)',
  },
  routerPreSoftmax: {
    type: 'boolean',
    default: false,
    doc: 'softmax over all experts before top-k instead of over the chosen k (moe_router_pre_softmax); needed with softmax scores when topk is 1',
  },
  routerNumGroups: { type: 'int', min: 1, nullable: true, default: null, doc: 'expert groups of group-limited routing (moe_router_num_groups); null: off' },
  routerGroupTopk: { type: 'int', min: 1, nullable: true, default: null, doc: 'groups kept per token in group-limited routing (moe_router_group_topk); null: off' },
  routerTopkScalingFactor: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    nullable: true,
    default: null,
    doc: 'multiplier on the routing probabilities (moe_router_topk_scaling_factor); null: 1',
  },
  routerEnableExpertBias: {
    type: 'boolean',
    default: false,
    doc: 'aux-loss-free load balancing: a per-expert bias on the scores for the top-k choice only (moe_router_enable_expert_bias); needs sigmoid or sqrtsoftplus scores',
  },
  routerBiasUpdateRate: { type: 'number', min: 0, default: 1e-3, doc: 'step of the expert-bias update per global batch (moe_router_bias_update_rate)' },
  routerLoadBalancingType: {
    type: 'enum',
    values: LOAD_BALANCING_TYPES,
    list: true,
    scalarOrList: true,
    default: 'aux_loss',
    doc: 'load balancing: one type, or a list combined with one auxLossCoeff entry each (moe_router_load_balancing_type)',
  },
  auxLossCoeff: {
    type: 'number',
    min: 0,
    list: true,
    scalarOrList: true,
    default: 0,
    doc: 'aux-loss coefficient, a list as long as routerLoadBalancingType when that is a list (moe_aux_loss_coeff); 0: off',
  },
  zLossCoeff: { type: 'number', min: 0, nullable: true, default: null, doc: 'router z-loss coefficient (moe_z_loss_coeff); null: off' },
  inputJitterEps: {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    nullable: true,
    default: null,
    doc: 'multiplicative uniform jitter in [1 - eps, 1 + eps] on the router input while training (moe_input_jitter_eps); null: off',
  },
  // ---- capacity ------------------------------------------------------------------------
  capacityFactor: {
    type: 'number',
    nullable: true,
    default: null,
    doc: 'expert capacity factor: capacity = ceil(tokens·k / E · factor) (moe_expert_capacity_factor); null or negative: dropless',
  },
  padToCapacity: { type: 'boolean', default: false, doc: "pad every expert's input to its capacity (moe_pad_expert_input_to_capacity); needs capacityFactor" },
  dropPolicy: { type: 'enum', values: ['probs', 'position'], default: 'probs', doc: 'which tokens an over-full expert keeps (moe_token_drop_policy)' },
  padExpertRowsToMultiple: {
    type: 'int',
    min: 1,
    nullable: true,
    default: null,
    doc: "pad each expert's row count to a multiple of this for low-precision GEMMs (moe_router_padding_for_quantization uses the recipe's 16 / 32 / 128); null: the recipe's alignment when FP8/FP4 is on",
  },
  // ---- expert MLPs ---------------------------------------------------------------------
  hiddenSize: { type: 'int', min: 1, required: true, doc: 'model hidden size H (hidden_size)' },
  ffnHiddenSize: {
    type: 'int',
    min: 1,
    nullable: true,
    default: null,
    doc: "FFN width F of each routed expert (moe_ffn_hidden_size); null: 4 × hiddenSize (Megatron's ffn_hidden_size default)",
  },
  activation: {
    type: 'enum',
    values: ['swiglu', 'gelu'],
    default: 'swiglu',
    doc: "expert activation: SwiGLU (fc1 2F wide; Megatron --swiglu) or tanh GELU (--openai-gelu); Megatron's default is erf GELU",
  },
  groupedGemm: {
    type: 'boolean',
    default: true,
    doc: 'run the local experts as one grouped GEMM (moe_grouped_gemm; Megatron defaults to off); false: one GEMM per expert in a loop',
  },
  sharedExpertSize: {
    type: 'int',
    min: 1,
    nullable: true,
    default: null,
    doc: 'total FFN width of the shared experts, count × width (moe_shared_expert_intermediate_size); null: none',
  },
  sharedExpertGate: { type: 'boolean', default: false, doc: "gate the shared experts' output with sigmoid(x·w) (moe_shared_expert_gate); needs sharedExpertSize" },
  sharedExpertOverlap: {
    type: 'boolean',
    default: false,
    doc: "run the shared experts while the all-to-all is in flight, forward and backward (moe_shared_expert_overlap); needs 'alltoall'",
  },
  tokenDispatcherType: {
    type: 'enum',
    values: ['allgather', 'alltoall'],
    default: 'alltoall',
    doc: "token dispatcher over the expert-parallel group (moe_token_dispatcher_type; Megatron defaults to 'allgather')",
  },
  // ---- parallelism (Parallel Folding) ---------------------------------------------------
  ep: { type: 'int', min: 1, default: 1, doc: 'expert-parallel size (expert_model_parallel_size); divides numExperts' },
  tp: { type: 'int', min: 1, default: 1, doc: 'tensor-parallel size of attention (tensor_model_parallel_size)' },
  etp: { type: 'int', min: 1, nullable: true, default: null, doc: 'tensor-parallel size of the experts (expert_tensor_parallel_size); null: tp' },
  dp: { type: 'int', min: 1, default: 1, doc: 'data-parallel size of attention; the world is tp·cp·dp·pp (Megatron derives it from the world size)' },
  pp: { type: 'int', min: 1, default: 1, doc: 'pipeline-parallel size (pipeline_model_parallel_size)' },
  cp: { type: 'int', min: 1, default: 1, doc: 'context-parallel size (context_parallel_size)' },
  order: { type: 'string', maxLength: 64, default: 'tp-cp-ep-dp-pp', doc: "rank order of both rank generators (Megatron's 'order' argument of initialize_model_parallel)" },
  // ---- memory --------------------------------------------------------------------------
  recomputeModules: {
    type: 'enum',
    values: RECOMPUTE_MODULES,
    list: true,
    default: [],
    doc: "modules re-run in backward instead of keeping their activations (recompute_modules with recompute_granularity 'selective'); 'experts' (the routed expert MLP) is Kiln's",
  },
  offloadModules: {
    type: 'enum',
    values: OFFLOAD_MODULES,
    list: true,
    default: [],
    doc: 'modules whose inputs move off the compute backend until backward (offload_modules with fine_grained_activation_offloading)',
  },
  // ---- low precision -------------------------------------------------------------------
  fp8: {
    type: 'enum',
    values: ['e4m3', 'hybrid'],
    nullable: true,
    default: null,
    doc: 'FP8 expert GEMMs (fp8): E4M3 everywhere, or hybrid = E4M3 forward, E5M2 gradients; null: off; exclusive with fp4',
  },
  fp8Recipe: { type: 'enum', values: ['delayed', 'tensorwise', 'blockwise', 'mxfp8'], default: 'delayed', doc: 'FP8 scaling recipe (fp8_recipe)' },
  fp8Margin: { type: 'int', min: 0, default: 0, doc: 'delayed scaling: scale = (fmax / amax) / 2^margin (fp8_margin)' },
  fp8AmaxHistoryLen: { type: 'int', min: 1, default: 1, doc: 'delayed scaling: steps of amax history per tensor (fp8_amax_history_len)' },
  fp8AmaxComputeAlgo: {
    type: 'enum',
    values: ['most_recent', 'max'],
    default: 'most_recent',
    doc: "delayed scaling: amax from the history's most recent entry or its max (fp8_amax_compute_algo)",
  },
  fp4: { type: 'enum', values: ['e2m1'], nullable: true, default: null, doc: 'NVFP4 expert GEMMs (fp4); null: off; exclusive with fp8' },
  fp4Recipe: { type: 'enum', values: ['nvfp4'], default: 'nvfp4', doc: 'FP4 recipe (fp4_recipe)' },
  // ---- loss bookkeeping ----------------------------------------------------------------
  calculatePerTokenLoss: {
    type: 'boolean',
    default: false,
    doc: 'the main loss is summed over tokens and divided by the global token count later; aux losses are then pre-multiplied by the local token count (calculate_per_token_loss)',
  },
  numLayers: { type: 'int', min: 1, default: 1, doc: 'transformer layers, for per-layer loss logging (num_layers)' },
} satisfies FieldTable;

/** The keys of `MoEConfig`, in table order. */
export type MoEConfigKey = keyof typeof MOE_CONFIG_FIELDS;
export const MOE_CONFIG_KEYS = Object.keys(MOE_CONFIG_FIELDS) as MoEConfigKey[];
