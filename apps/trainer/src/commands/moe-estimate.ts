/**
 * `kiln moe estimate` (parameters, FLOPs, memory per GPU, and step time / throughput / MFU on
 * a GPU from @kiln/moe-core's estimator) and `kiln moe plan` (the layouts that fit, ranked by
 * estimated throughput).
 */
import {
  GPUS,
  MODEL_PRESETS,
  type PerformanceEstimate,
  TRAINING_RECOMPUTE,
  type TrainingRecompute,
  countParams,
  estimatePerformance,
  flopsPerToken,
  gpuByName,
  inflightMicroBatches,
  memoryPerGpu,
  planLayouts,
  validateAgainstPublished,
} from '@kiln/moe-core';
import type { Config, FieldTable } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';

const MODELS = Object.keys(MODEL_PRESETS);
const GPU_NAMES = Object.keys(GPUS);
const PRECISIONS = ['bf16', 'fp8', 'fp4'] as const;

const MODEL_FIELDS = {
  model: { type: 'enum', values: MODELS, default: MODELS[0] ?? 'deepseek-v3', doc: 'model architecture' },
  gpu: { type: 'enum', values: GPU_NAMES, default: 'h100', doc: 'GPU (dense peaks, HBM, NVLink domain and network from NVIDIA datasheets)' },
  precision: { type: 'enum', values: PRECISIONS, default: 'bf16', doc: 'GEMM precision (attention and the output layer stay BF16)' },
  seqLength: { type: 'int', default: 4096, min: 1, doc: 'tokens per sequence' },
  globalBatchSize: { type: 'int', default: 1024, min: 1, doc: 'sequences per optimizer step' },
  overlapExpertComm: { type: 'boolean', default: false, doc: 'hide the EP all-to-all behind another micro-batch (1F1B A2A overlap)' },
  json: { type: 'boolean', default: false, doc: 'print JSON' },
} satisfies FieldTable;

const ESTIMATE_SCHEMA = {
  ...MODEL_FIELDS,
  tp: { type: 'int', default: 1, min: 1, doc: 'tensor parallel size (attention and dense layers)' },
  pp: { type: 'int', default: 1, min: 1, doc: 'pipeline parallel size' },
  vp: { type: 'int', default: 1, min: 1, doc: 'virtual pipeline stages per GPU (interleaved 1F1B)' },
  ep: { type: 'int', default: 8, min: 1, doc: 'expert parallel size (must divide the expert count)' },
  etp: { type: 'int', default: 1, min: 1, doc: 'expert tensor parallel size' },
  cp: { type: 'int', default: 1, min: 1, doc: 'context parallel size' },
  dp: { type: 'int', default: 8, min: 1, doc: 'attention data parallel size' },
  microBatchSize: { type: 'int', default: 1, min: 1, doc: 'sequences per micro-batch' },
  recompute: { type: 'enum', values: TRAINING_RECOMPUTE, list: true, default: [], doc: 'modules recomputed in backward (full: the whole layer)' },
  distributedOptimizer: { type: 'boolean', default: true, doc: "shard optimizer state over data-parallel ranks (Megatron's distributed optimizer)" },
  validate: { type: 'boolean', default: false, doc: "print the model's estimates next to Megatron-Core's published MoE throughputs" },
} satisfies FieldTable;

const PLAN_SCHEMA = {
  ...MODEL_FIELDS,
  gpus: { type: 'int', default: 256, min: 1, doc: 'number of GPUs' },
  top: { type: 'int', default: 10, min: 1, doc: 'how many layouts to list' },
  memoryFraction: { type: 'number', default: 0.9, min: 0, max: 1, exclusiveMin: true, doc: 'share of HBM a layout may use (the rest: workspace, fragmentation)' },
} satisfies FieldTable;

const GiB = 1024 ** 3;

function human(n: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [scale, unit] of units) if (Math.abs(n) >= scale) return `${(n / scale).toFixed(2)} ${unit}`;
  return String(n);
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const secs = (v: number) => `${v.toFixed(2)} s`;

/** The estimator's checks (divisibility, sizes) are configuration mistakes: exit 2 naming them. */
function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function performanceLines(p: PerformanceEstimate, c: Config): string[] {
  const b = p.breakdown;
  return [
    `on ${p.worldSize} × ${gpuByName(String(c.gpu)).name}, ${c.precision}: ${secs(p.stepSeconds)} per step of ${c.globalBatchSize} × ${c.seqLength} tokens (${p.microBatches} micro-batches per pipeline)`,
    `  ${human(p.tokensPerSecond)} tokens/s (${Math.round(p.tokensPerSecondPerGpu)} per GPU), ${p.tflopsPerGpu.toFixed(0)} TFLOPS/GPU (Megatron's model FLOPs), MFU ${pct(p.mfu)}`,
    `  compute     dense GEMM ${secs(b.denseGemm)}, expert GEMM ${secs(b.expertGemm)}, output layer ${secs(b.logits)}, attention ${secs(b.attention)}, memory-bound ${secs(b.memoryBound)} (recompute ${secs(b.recompute)} of these)`,
    `  exposed     EP ${secs(b.expertParallel)}, TP ${secs(b.tensorParallel)}, CP ${secs(b.contextParallel)}, PP ${secs(b.pipelineParallel)}, DP ${secs(b.dataParallel)}, optimizer ${secs(b.optimizer)}, pipeline bubble and imbalance ${secs(b.bubble)}`,
  ];
}

function validationTable(ctx: CommandContext): number {
  const rows = validateAgainstPublished();
  if (ctx.config.json) {
    ctx.stdout.write(`${JSON.stringify({ validation: rows }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = ['model and system                 layout                                  published  estimated  error', ...rows.map((r) => `${r.label.padEnd(32)} ${r.layout.padEnd(39)} ${String(r.publishedTflops).padStart(9)} ${r.estimatedTflops.toFixed(0).padStart(10)} ${`${r.error >= 0 ? '+' : ''}${(100 * r.error).toFixed(1)} %`.padStart(8)}`)];
  lines.push('(TFLOPS/GPU; published: Megatron-Core MoE report, arXiv:2603.07685; see the @kiln/moe-core README for the assumptions and the gaps)');
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

export const moeEstimateCommand: CommandSpec = {
  path: ['moe', 'estimate'],
  summary: 'parameters, FLOPs, memory per GPU, and step time / tokens/s / TFLOPS / MFU of an MoE model under a layout',
  details:
    'Memory and time are estimates; every efficiency assumption is listed in the @kiln/moe-core README.\n' +
    'Examples:\n  kiln moe estimate --preset deepseek-v3-gb200\n  kiln moe estimate --model qwen3-235b-a22b --gpu h100 --tp 4 --pp 2 --ep 32 --dp 64 --recompute moe\n  kiln moe estimate --validate',
  schema: ESTIMATE_SCHEMA,
  presets: {
    'deepseek-v3': { doc: 'DeepSeek-V3 on 256 H100: ep 64, dp 256', values: { model: 'deepseek-v3', tp: 1, pp: 1, ep: 64, dp: 256 } },
    'qwen3-235b-a22b': { doc: 'Qwen3-235B-A22B on 512 H100: tp 4, pp 2, ep 32, dp 64', values: { model: 'qwen3-235b-a22b', tp: 4, pp: 2, ep: 32, dp: 64 } },
    'deepseek-v3-gb300': {
      doc: "DeepSeek-V3 on 256 GB300, MXFP8 (Megatron-Core's published layout: pp 2, vp 8, ep 32, mbs 2, gbs 4096)",
      values: { model: 'deepseek-v3', gpu: 'gb300', precision: 'fp8', tp: 1, pp: 2, vp: 8, ep: 32, dp: 128, microBatchSize: 2, globalBatchSize: 4096, recompute: ['mla_up_proj'] },
    },
    'deepseek-v3-gb200': {
      doc: "DeepSeek-V3 on 256 GB200, MXFP8 (Megatron-Core's published layout: pp 4, vp 4, ep 64, mbs 1, gbs 4096)",
      values: { model: 'deepseek-v3', gpu: 'gb200', precision: 'fp8', tp: 1, pp: 4, vp: 4, ep: 64, dp: 64, microBatchSize: 1, globalBatchSize: 4096, recompute: ['mla_up_proj'] },
    },
    'qwen3-235b-a22b-gb300': {
      doc: "Qwen3-235B-A22B on 256 GB300, MXFP8 (Megatron-Core's published layout: pp 4, ep 32, mbs 2, gbs 8192)",
      values: { model: 'qwen3-235b-a22b', gpu: 'gb300', precision: 'fp8', tp: 1, pp: 4, ep: 32, dp: 64, microBatchSize: 2, globalBatchSize: 8192 },
    },
    'qwen3-235b-a22b-gb200': {
      doc: "Qwen3-235B-A22B on 256 GB200, MXFP8 (Megatron-Core's published layout: pp 8, ep 32, mbs 1, gbs 8192)",
      values: { model: 'qwen3-235b-a22b', gpu: 'gb200', precision: 'fp8', tp: 1, pp: 8, ep: 32, dp: 32, microBatchSize: 1, globalBatchSize: 8192 },
    },
  },
  defaultPreset: 'deepseek-v3',
  async handler(ctx) {
    const c = ctx.config;
    if (c.validate) return validationTable(ctx);
    const spec = MODEL_PRESETS[String(c.model)]!;
    const gpu = gpuByName(String(c.gpu));
    const params = countParams(spec);
    const flops = flopsPerToken(spec, Number(c.seqLength));
    const recompute = (c.recompute as readonly string[]) as TrainingRecompute[];
    const layout = { tp: Number(c.tp), pp: Number(c.pp), vp: Number(c.vp), ep: Number(c.ep), etp: Number(c.etp), cp: Number(c.cp), dp: Number(c.dp) };
    const mbs = Number(c.microBatchSize);
    const memory = usage(() =>
      memoryPerGpu(spec, layout, {
        microBatchSize: mbs,
        seqLength: Number(c.seqLength),
        distributedOptimizer: Boolean(c.distributedOptimizer),
        inflightMicroBatches: inflightMicroBatches(layout.pp, layout.vp),
        recomputeExperts: recompute.some((m) => m === 'moe' || m === 'moe_act' || m === 'full'),
        recomputeFull: recompute.includes('full'),
      }),
    );
    const performance = usage(() =>
      estimatePerformance({
        spec,
        layout,
        gpu,
        precision: c.precision as 'bf16' | 'fp8' | 'fp4',
        seqLength: Number(c.seqLength),
        microBatchSize: mbs,
        globalBatchSize: Number(c.globalBatchSize),
        recompute,
        overlapExpertComm: Boolean(c.overlapExpertComm),
      }),
    );
    if (c.json) {
      ctx.stdout.write(`${JSON.stringify({ model: spec.name, gpu: gpu.name, config: c, params, flopsPerToken: flops, memory, performance }, null, 2)}\n`);
      return EXIT.ok;
    }
    const fits = memory.totalBytes <= gpu.hbmBytes;
    const lines = [
      `${spec.name}: ${human(params.total)} parameters, ${human(params.active)} active per token`,
      `training FLOPs per token at ${c.seqLength} tokens: ${human(flops.training)} (forward ${human(flops.forward)}); Megatron's model count ${human(performance.modelFlopsPerToken)}`,
      `layout tp ${c.tp} · pp ${c.pp}${layout.vp > 1 ? ` (vp ${c.vp})` : ''} · ep ${c.ep} · etp ${c.etp} · cp ${c.cp} · dp ${c.dp}: ${memory.worldSize} GPUs, expert data parallel ${memory.edp}`,
      `memory per GPU (first pipeline stage): ${(memory.totalBytes / GiB).toFixed(1)} GiB${fits ? '' : ` — more than the ${(gpu.hbmBytes / GiB).toFixed(0)} GiB of a ${gpu.name}`}`,
      `  weights     ${(memory.weightsBytes / GiB).toFixed(1).padStart(8)} GiB  (${human(memory.paramsPerGpu)} parameters: ${human(memory.nonExpertParamsPerGpu)} non-expert, ${human(memory.expertParamsPerGpu)} expert)`,
      `  gradients   ${(memory.gradsBytes / GiB).toFixed(1).padStart(8)} GiB`,
      `  optimizer   ${(memory.optimizerBytes / GiB).toFixed(1).padStart(8)} GiB`,
      `  activations ${(memory.activationsBytes / GiB).toFixed(1).padStart(8)} GiB`,
      ...performanceLines(performance, c),
    ];
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};

export const moePlanCommand: CommandSpec = {
  path: ['moe', 'plan'],
  summary: 'rank the parallel layouts of an MoE model that fit N GPUs by estimated throughput',
  details:
    'Searches tp, cp, pp, vp, ep and the micro-batch size (with the least recomputation that fits),\n' +
    'keeps the layouts whose estimated memory fits the GPU and ranks them by the time model.\n' +
    'Example:\n  kiln moe plan --model deepseek-v3 --gpus 256 --gpu gb200 --precision fp8 --global-batch-size 4096',
  schema: PLAN_SCHEMA,
  async handler(ctx) {
    const c = ctx.config;
    const spec = MODEL_PRESETS[String(c.model)]!;
    const gpu = gpuByName(String(c.gpu));
    const plans = usage(() =>
      planLayouts(spec, {
        gpus: Number(c.gpus),
        gpu,
        precision: c.precision as 'bf16' | 'fp8' | 'fp4',
        seqLength: Number(c.seqLength),
        globalBatchSize: Number(c.globalBatchSize),
        memoryFraction: Number(c.memoryFraction),
        overlapExpertComm: Boolean(c.overlapExpertComm),
        top: Number(c.top),
      }),
    );
    if (c.json) {
      ctx.stdout.write(`${JSON.stringify({ model: spec.name, gpu: gpu.name, config: c, plans }, null, 2)}\n`);
      return plans.length > 0 ? EXIT.ok : EXIT.failed;
    }
    if (plans.length === 0) {
      ctx.stderr.write(
        `no layout of ${spec.name} fits ${c.gpus} × ${gpu.name} (${(gpu.hbmBytes / GiB).toFixed(0)} GiB each, ${pct(Number(c.memoryFraction))} usable) with a global batch of ${c.globalBatchSize}: add GPUs or change the batch\n`,
      );
      return EXIT.failed;
    }
    const lines = [
      `${spec.name} on ${c.gpus} × ${gpu.name}, ${c.precision}, ${c.globalBatchSize} × ${c.seqLength} tokens per step: the ${plans.length} fastest layouts that fit`,
      ' #  tp cp pp vp  ep  dp mbs recompute  memory GiB  step s  tokens/s/GPU  TFLOPS/GPU    MFU',
      ...plans.map((p, i) => {
        const l = p.layout;
        const cols = [
          String(i + 1).padStart(2),
          String(l.tp).padStart(3),
          String(l.cp).padStart(2),
          String(l.pp).padStart(2),
          String(l.vp).padStart(2),
          String(l.ep).padStart(3),
          String(l.dp).padStart(3),
          String(p.microBatchSize).padStart(3),
          (p.recompute.join(',') || '-').padEnd(9),
          (p.memory.totalBytes / GiB).toFixed(1).padStart(11),
          p.performance.stepSeconds.toFixed(2).padStart(7),
          Math.round(p.performance.tokensPerSecondPerGpu).toString().padStart(13),
          p.performance.tflopsPerGpu.toFixed(0).padStart(11),
          pct(p.performance.mfu).padStart(6),
        ];
        return cols.join(' ');
      }),
    ];
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};

export const moeEstimateCommands: CommandSpec[] = [moeEstimateCommand, moePlanCommand];
