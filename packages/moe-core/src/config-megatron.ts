/**
 * `MoEConfig` to and from Megatron-LM's command line. Both directions compare with Megatron's
 * OWN defaults (`megatron/core/transformer/transformer_config.py`, `model_parallel_config.py`
 * and `megatron/training/arguments.py`), not Kiln's: a flag is written when the config differs
 * from what Megatron would do without it, and a flag left out reads as Megatron's default. So
 * Kiln's default config exports `--moe-grouped-gemm --moe-token-dispatcher-type alltoall
 * --swiglu` (Megatron's defaults are no grouped GEMM, the all-gather dispatcher and GELU), and
 * `fromMegatronArgs(toMegatronArgs(c))` gives `c` back for every config Megatron can express.
 */
import { type MoEConfig, type MoEConfigInput, quantizationAlignSize, validateMoEConfig } from './config.js';

type Value = string | number | boolean | null | readonly (string | number)[];

/** How one Megatron flag carries its value. */
type FlagKind = 'bool' | 'int' | 'float' | 'str' | 'ints' | 'floats' | 'strs';

/**
 * A config field and its Megatron flag, with Megatron's default for that flag (what the
 * field is when the flag is absent). `null` as a default means Megatron's `None`.
 */
interface Mapping {
  field: keyof MoEConfig;
  flag: string;
  kind: FlagKind;
  megatronDefault: Value;
  /** Always written: shapes Megatron has no usable default for. */
  always?: boolean;
}

const MAPPINGS: Mapping[] = [
  { field: 'numLayers', flag: '--num-layers', kind: 'int', megatronDefault: null, always: true },
  { field: 'hiddenSize', flag: '--hidden-size', kind: 'int', megatronDefault: null, always: true },
  { field: 'numExperts', flag: '--num-experts', kind: 'int', megatronDefault: null, always: true },
  { field: 'ffnHiddenSize', flag: '--moe-ffn-hidden-size', kind: 'int', megatronDefault: null, always: true },
  { field: 'topk', flag: '--moe-router-topk', kind: 'int', megatronDefault: 2 },
  { field: 'routerScoreFunction', flag: '--moe-router-score-function', kind: 'str', megatronDefault: 'softmax' },
  { field: 'routerPreSoftmax', flag: '--moe-router-pre-softmax', kind: 'bool', megatronDefault: false },
  { field: 'routerNumGroups', flag: '--moe-router-num-groups', kind: 'int', megatronDefault: null },
  { field: 'routerGroupTopk', flag: '--moe-router-group-topk', kind: 'int', megatronDefault: null },
  { field: 'routerTopkScalingFactor', flag: '--moe-router-topk-scaling-factor', kind: 'float', megatronDefault: null },
  { field: 'routerEnableExpertBias', flag: '--moe-router-enable-expert-bias', kind: 'bool', megatronDefault: false },
  { field: 'routerBiasUpdateRate', flag: '--moe-router-bias-update-rate', kind: 'float', megatronDefault: 1e-3 },
  { field: 'routerLoadBalancingType', flag: '--moe-router-load-balancing-type', kind: 'strs', megatronDefault: 'aux_loss' },
  { field: 'auxLossCoeff', flag: '--moe-aux-loss-coeff', kind: 'floats', megatronDefault: 0 },
  { field: 'zLossCoeff', flag: '--moe-z-loss-coeff', kind: 'float', megatronDefault: null },
  { field: 'inputJitterEps', flag: '--moe-input-jitter-eps', kind: 'float', megatronDefault: null },
  { field: 'capacityFactor', flag: '--moe-expert-capacity-factor', kind: 'float', megatronDefault: null },
  { field: 'padToCapacity', flag: '--moe-pad-expert-input-to-capacity', kind: 'bool', megatronDefault: false },
  { field: 'dropPolicy', flag: '--moe-token-drop-policy', kind: 'str', megatronDefault: 'probs' },
  { field: 'groupedGemm', flag: '--moe-grouped-gemm', kind: 'bool', megatronDefault: false },
  { field: 'sharedExpertSize', flag: '--moe-shared-expert-intermediate-size', kind: 'int', megatronDefault: null },
  { field: 'sharedExpertGate', flag: '--moe-shared-expert-gate', kind: 'bool', megatronDefault: false },
  { field: 'sharedExpertOverlap', flag: '--moe-shared-expert-overlap', kind: 'bool', megatronDefault: false },
  { field: 'tokenDispatcherType', flag: '--moe-token-dispatcher-type', kind: 'str', megatronDefault: 'allgather' },
  { field: 'tp', flag: '--tensor-model-parallel-size', kind: 'int', megatronDefault: 1 },
  { field: 'pp', flag: '--pipeline-model-parallel-size', kind: 'int', megatronDefault: 1 },
  { field: 'cp', flag: '--context-parallel-size', kind: 'int', megatronDefault: 1 },
  { field: 'ep', flag: '--expert-model-parallel-size', kind: 'int', megatronDefault: 1 },
  // Megatron's None: the value of --tensor-model-parallel-size (handled below).
  { field: 'etp', flag: '--expert-tensor-parallel-size', kind: 'int', megatronDefault: null },
  { field: 'fp8', flag: '--fp8-format', kind: 'str', megatronDefault: null },
  { field: 'fp8Recipe', flag: '--fp8-recipe', kind: 'str', megatronDefault: 'delayed' },
  { field: 'fp8Margin', flag: '--fp8-margin', kind: 'int', megatronDefault: 0 },
  { field: 'fp8AmaxHistoryLen', flag: '--fp8-amax-history-len', kind: 'int', megatronDefault: 1 },
  { field: 'fp8AmaxComputeAlgo', flag: '--fp8-amax-compute-algo', kind: 'str', megatronDefault: 'most_recent' },
  { field: 'fp4', flag: '--fp4-format', kind: 'str', megatronDefault: null },
  { field: 'fp4Recipe', flag: '--fp4-recipe', kind: 'str', megatronDefault: 'nvfp4' },
  { field: 'calculatePerTokenLoss', flag: '--calculate-per-token-loss', kind: 'bool', megatronDefault: false },
];

/** Flags with their own handling (activation, recompute, offload, quantization padding). */
const SWIGLU = '--swiglu';
const OPENAI_GELU = '--openai-gelu';
const RECOMPUTE_GRANULARITY = '--recompute-granularity';
const RECOMPUTE_MODULES_FLAG = '--recompute-modules';
const OFFLOADING = '--fine-grained-activation-offloading';
const OFFLOAD_MODULES_FLAG = '--offload-modules';
const PADDING = '--moe-router-padding-for-quantization';
/** Megatron's compatibility alias of PADDING. */
const PADDING_FP8 = '--moe-router-padding-for-fp8';
/** Megatron's `--ffn-hidden-size`: the MoE FFN width when `--moe-ffn-hidden-size` is absent. */
const FFN = '--ffn-hidden-size';

/** The Megatron-LM flag of every field that has one (Kiln-only fields are absent). */
export const MEGATRON_FLAGS: Partial<Record<keyof MoEConfig, string>> = {
  ...Object.fromEntries(MAPPINGS.map((m) => [m.field, m.flag])),
  activation: SWIGLU,
  recomputeModules: RECOMPUTE_MODULES_FLAG,
  offloadModules: OFFLOAD_MODULES_FLAG,
  padExpertRowsToMultiple: PADDING,
};

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/** Megatron-LM flags for a config, plus what Megatron cannot express. */
export interface MegatronExport {
  args: string[];
  /** Fields (with a reason) that have no Megatron flag and differ from what Megatron does. */
  notExpressible: string[];
}

/**
 * Megatron-LM flags for every field that differs from Megatron's own default (booleans as
 * bare flags, lists space-separated; the shapes always), and the Kiln-only settings that
 * Megatron cannot express.
 */
export function exportMegatronArgs(config: MoEConfig): MegatronExport {
  const args: string[] = [];
  const notExpressible: string[] = [];
  for (const m of MAPPINGS) {
    const v = config[m.field] as Value;
    // Megatron's default of --expert-tensor-parallel-size is the tensor-parallel size.
    const megatronDefault = m.field === 'etp' ? config.tp : m.megatronDefault;
    if (!m.always && (same(v, megatronDefault) || (m.kind === 'floats' || m.kind === 'strs' ? same(listOf(v), listOf(megatronDefault)) : false))) continue;
    if (v === null) continue;
    if (m.kind === 'bool') {
      if (v === true) args.push(m.flag);
      continue;
    }
    args.push(m.flag, ...listOf(v).map(String));
  }
  args.push(config.activation === 'swiglu' ? SWIGLU : OPENAI_GELU);
  const recompute = config.recomputeModules.filter((r) => r !== 'experts');
  if (recompute.length > 0) args.push(RECOMPUTE_GRANULARITY, 'selective', RECOMPUTE_MODULES_FLAG, ...recompute);
  if (config.recomputeModules.includes('experts')) {
    notExpressible.push("recomputeModules 'experts': Megatron recomputes the routed experts only as part of 'moe'");
  }
  if (config.offloadModules.length > 0) args.push(OFFLOADING, OFFLOAD_MODULES_FLAG, ...config.offloadModules);
  if (config.padExpertRowsToMultiple !== null) {
    if (config.padExpertRowsToMultiple === quantizationAlignSize(config)) args.push(PADDING);
    else notExpressible.push(`padExpertRowsToMultiple ${config.padExpertRowsToMultiple}: Megatron pads only to the recipe's alignment (${quantizationAlignSize(config)})`);
  }
  if (config.dp !== 1) notExpressible.push(`dp ${config.dp}: Megatron derives the data-parallel size from the world size (launch tp·cp·pp·dp ranks)`);
  if (config.order !== 'tp-cp-ep-dp-pp') notExpressible.push(`order '${config.order}': Megatron-LM's launcher uses 'tp-cp-ep-dp-pp'`);
  return { args, notExpressible };
}

/** Megatron-LM flags for the fields that differ from Megatron's defaults (see `exportMegatronArgs`). */
export function toMegatronArgs(config: MoEConfig): string[] {
  return exportMegatronArgs(config).args;
}

/** A Megatron-LM command line read into a config, with what was left out and why. */
export interface MegatronImport {
  /** The MoE config those flags make, Megatron's defaults filling the rest. */
  config: MoEConfigInput;
  /** Flags and settings that do not map to MoEConfig (other parts of Megatron, or approximations). */
  notes: string[];
}

export interface MegatronImportOptions {
  /**
   * The attention data-parallel size (Megatron derives it from the launcher's world size);
   * default: the smallest that holds the expert layout.
   */
  dp?: number;
  /** The launcher's world size instead: dp = worldSize / (tp·cp·pp), as Megatron derives it. */
  worldSize?: number;
}

const MAPPING_BY_FLAG = new Map(MAPPINGS.map((m) => [m.flag, m]));
const OWN_FLAGS = new Set([SWIGLU, OPENAI_GELU, RECOMPUTE_GRANULARITY, RECOMPUTE_MODULES_FLAG, OFFLOADING, OFFLOAD_MODULES_FLAG, PADDING, PADDING_FP8, FFN]);

/** Splits a shell-like string into words: whitespace separates, single and double quotes group. */
function tokenize(text: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) out.push(word);
      word = null;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) throw new Error(`Megatron flags: unclosed ${quote} quote`);
  if (word !== null) out.push(word);
  return out;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The smallest attention data-parallel size for which the world tp·cp·pp·dp holds whole
 * expert-model-parallel groups etp·ep·pp (Megatron takes dp from the launcher's world size).
 */
export function smallestDataParallel(c: Pick<MoEConfig, 'tp' | 'cp' | 'pp' | 'ep' | 'etp'>): number {
  const attention = c.tp * c.cp * c.pp;
  const experts = c.etp * c.ep * c.pp;
  return experts / gcd(attention, experts);
}

/** `--flag v1 v2 --other=v3` → flag → values (a later repeat of a flag wins, as in argparse). */
function groupFlags(tokens: string[]): Map<string, string[]> {
  const flags = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const tok of tokens) {
    if (tok.startsWith('--')) {
      const eq = tok.indexOf('=');
      const name = eq > 0 ? tok.slice(0, eq) : tok;
      current = eq > 0 ? [tok.slice(eq + 1)] : [];
      flags.set(name, current);
    } else if (current) {
      current.push(tok);
    } else {
      throw new Error(`Megatron flags: '${tok}' comes before any --flag`);
    }
  }
  return flags;
}

function parseValue(m: Mapping, values: string[]): Value {
  const fail = (why: string): never => {
    throw new Error(`Megatron flags: ${m.flag} ${values.join(' ')}: ${why}`);
  };
  if (m.kind === 'bool') {
    if (values.length > 0) fail('takes no value');
    return true;
  }
  if (values.length === 0) fail('needs a value');
  const many = m.kind === 'ints' || m.kind === 'floats' || m.kind === 'strs';
  if (!many && values.length > 1) fail('takes one value');
  const num = (s: string): number => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) fail(`'${s}' is not a number`);
    if ((m.kind === 'int' || m.kind === 'ints') && !Number.isInteger(n)) fail(`'${s}' is not an integer`);
    return n;
  };
  const parsed = values.map((s) => (m.kind === 'str' || m.kind === 'strs' ? s : num(s)));
  // argparse's nargs='+' with one value collapses to that value in Megatron's validate_args.
  return many && parsed.length > 1 ? parsed : parsed[0]!;
}

/**
 * Reads Megatron-LM flags (a string as in a launch script, or an argv array) into an MoE
 * config: each MoE / parallelism / FP8 / FP4 / recompute / offload flag sets its field, and
 * every field not named takes Megatron's default. Flags of other parts of Megatron (data,
 * optimizer, attention, …) are listed in `notes`, not errors; a malformed value is an error
 * naming the flag. The result still goes through `validateMoEConfig`.
 */
export function fromMegatronArgs(flags: string | readonly string[], options: MegatronImportOptions = {}): MegatronImport {
  const tokens = typeof flags === 'string' ? tokenize(flags) : [...flags];
  const given = groupFlags(tokens);
  const notes: string[] = [];
  const config: Record<string, unknown> = {};
  for (const m of MAPPINGS) config[m.field] = m.megatronDefault;
  config.activation = 'gelu';
  config.groupedGemm = false;
  config.recomputeModules = [];
  config.offloadModules = [];
  for (const [flag, values] of given) {
    const m = MAPPING_BY_FLAG.get(flag);
    if (m) config[m.field] = parseValue(m, values);
    else if (!OWN_FLAGS.has(flag)) notes.push(`${flag}: not an MoE-layer setting, ignored`);
  }
  const flagValues = (flag: string) => given.get(flag) ?? null;
  const bare = (flag: string) => {
    const v = flagValues(flag);
    if (v && v.length > 0) throw new Error(`Megatron flags: ${flag} takes no value, got '${v.join(' ')}'`);
    return v !== null;
  };
  // Activation: --swiglu, --openai-gelu (tanh GELU), else Megatron's erf GELU.
  if (bare(SWIGLU)) config.activation = 'swiglu';
  else {
    config.activation = 'gelu';
    if (!bare(OPENAI_GELU)) notes.push("activation: Megatron's default is the exact (erf) GELU; Kiln's 'gelu' is the tanh form (Megatron's --openai-gelu)");
  }
  // Shapes Megatron derives when absent.
  if (config.ffnHiddenSize === null) {
    const ffn = flagValues(FFN);
    if (ffn) config.ffnHiddenSize = parseValue({ field: 'ffnHiddenSize', flag: FFN, kind: 'int', megatronDefault: null }, ffn);
    else if (typeof config.hiddenSize === 'number') {
      // arguments.py: ffn_hidden_size = 4·hidden, or int(4·hidden·2/3 / 64)·64 with --swiglu.
      const h = config.hiddenSize;
      config.ffnHiddenSize = config.activation === 'swiglu' ? Math.floor((4 * h * 2) / 3 / 64) * 64 : 4 * h;
    }
  }
  for (const k of ['numLayers', 'hiddenSize', 'numExperts', 'ffnHiddenSize'] as const) if (config[k] === null) delete config[k];
  if (config.etp === null) config.etp = config.tp;
  let dp = options.dp;
  if (dp === undefined && options.worldSize !== undefined) {
    const model = Number(config.tp ?? 1) * Number(config.cp ?? 1) * Number(config.pp ?? 1);
    if (options.worldSize % model !== 0) throw new Error(`Megatron flags: the world of ${options.worldSize} ranks does not divide into tp·cp·pp = ${model}`);
    dp = options.worldSize / model;
  }
  dp ??= smallestDataParallel(config as Pick<MoEConfig, 'tp' | 'cp' | 'pp' | 'ep' | 'etp'>);
  if (options.dp === undefined && options.worldSize === undefined && dp > 1) notes.push(`dp ${dp}: the smallest data-parallel size that holds the expert layout (Megatron takes it from the world size)`);
  config.dp = dp;
  config.groupedGemm = config.groupedGemm === true;
  // Recompute: modules count only with --recompute-granularity selective.
  const granularity = flagValues(RECOMPUTE_GRANULARITY);
  const modules = flagValues(RECOMPUTE_MODULES_FLAG);
  if (granularity && granularity[0] === 'selective') {
    // transformer_config.py: recompute_modules defaults to ["core_attn"].
    const list = modules ?? ['core_attn'];
    const kept = list.filter((x) => x !== 'core_attn' && x !== 'layernorm' && x !== 'mla_up_proj' && x !== 'mlp');
    for (const x of list) if (!kept.includes(x)) notes.push(`${RECOMPUTE_MODULES_FLAG} ${x}: not part of the MoE layer, ignored`);
    config.recomputeModules = kept;
  } else if (granularity) {
    throw new Error(`Megatron flags: ${RECOMPUTE_GRANULARITY} ${granularity.join(' ')} recomputes whole transformer layers; MoEConfig has selective recompute only (use recomputeModules ['moe'] for the MoE layer)`);
  } else if (modules) {
    notes.push(`${RECOMPUTE_MODULES_FLAG}: ignored without ${RECOMPUTE_GRANULARITY} selective, as in Megatron`);
  }
  // Offloading: modules count only with --fine-grained-activation-offloading.
  const offload = flagValues(OFFLOAD_MODULES_FLAG);
  if (bare(OFFLOADING)) {
    if (!offload || offload.length === 0) throw new Error(`Megatron flags: ${OFFLOADING} needs ${OFFLOAD_MODULES_FLAG}`);
    const kept = offload.filter((x) => x === 'expert_fc1' || x === 'moe_act' || x === 'fused_group_mlp');
    for (const x of offload) if (!(kept as string[]).includes(x)) notes.push(`${OFFLOAD_MODULES_FLAG} ${x}: not part of the MoE layer, ignored`);
    config.offloadModules = kept;
  } else if (offload) {
    notes.push(`${OFFLOAD_MODULES_FLAG}: ignored without ${OFFLOADING}, as in Megatron`);
  }
  // Row padding for quantized GEMMs: the recipe's alignment.
  if (bare(PADDING) || bare(PADDING_FP8)) {
    const align = quantizationAlignSize(config as Pick<MoEConfig, 'fp8' | 'fp8Recipe' | 'fp4'>);
    config.padExpertRowsToMultiple = align > 1 ? align : null;
    if (align === 1) notes.push(`${PADDING}: has no effect without --fp8-format or --fp4-format`);
  }
  return { config: config as MoEConfigInput, notes };
}

/** `fromMegatronArgs` then `validateMoEConfig`: a complete config, or an error naming the field. */
export function configFromMegatronArgs(flags: string | readonly string[], options: MegatronImportOptions = {}): { config: MoEConfig; notes: string[] } {
  const { config, notes } = fromMegatronArgs(flags, options);
  return { config: validateMoEConfig(config), notes };
}
