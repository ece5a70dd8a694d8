/**
 * `kiln moe estimate` (sizes, FLOPs and memory per GPU from @kiln/moe-core's estimator).
 */
import { MODEL_PRESETS, countParams, flopsPerToken, memoryPerGpu } from '@kiln/moe-core';
import type { CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import type { FieldTable } from '@kiln/tensor';

const MODELS = Object.keys(MODEL_PRESETS);

const ESTIMATE_SCHEMA = {
  model: { type: 'enum', values: MODELS, default: MODELS[0] ?? 'deepseek-v3', doc: 'model architecture' },
  tp: { type: 'int', default: 1, min: 1, doc: 'tensor parallel size (attention and dense layers)' },
  pp: { type: 'int', default: 1, min: 1, doc: 'pipeline parallel size (must divide the layer count)' },
  ep: { type: 'int', default: 8, min: 1, doc: 'expert parallel size (must divide the expert count)' },
  etp: { type: 'int', default: 1, min: 1, doc: 'expert tensor parallel size' },
  cp: { type: 'int', default: 1, min: 1, doc: 'context parallel size' },
  dp: { type: 'int', default: 8, min: 1, doc: 'attention data parallel size' },
  microBatchSize: { type: 'int', default: 1, min: 1, doc: 'sequences per micro-batch' },
  seqLength: { type: 'int', default: 4096, min: 1, doc: 'tokens per sequence' },
  distributedOptimizer: { type: 'boolean', default: true, doc: "shard optimizer state over data-parallel ranks (Megatron's distributed optimizer)" },
  recomputeExperts: { type: 'boolean', default: false, doc: 'selectively recompute the expert MLPs' },
  json: { type: 'boolean', default: false, doc: 'print JSON' },
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

export const moeEstimateCommand: CommandSpec = {
  path: ['moe', 'estimate'],
  summary: 'parameters, FLOPs per token and memory per GPU of an MoE model under a parallel layout',
  details: 'Example:\n  kiln moe estimate --preset deepseek-v3\n  kiln moe estimate --model qwen3-235b-a22b --tp 4 --pp 2 --ep 32 --dp 64 --recompute-experts',
  schema: ESTIMATE_SCHEMA,
  presets: {
    'qwen3-235b-a22b': { doc: 'Qwen3-235B-A22B on 512 GPUs: tp 4, pp 2, ep 32, dp 64', values: { model: 'qwen3-235b-a22b', tp: 4, pp: 2, ep: 32, dp: 64 } },
    'deepseek-v3': { doc: 'DeepSeek-V3 on 256 GPUs: ep 64, dp 256', values: { model: 'deepseek-v3', tp: 1, pp: 1, ep: 64, dp: 256 } },
  },
  defaultPreset: 'deepseek-v3',
  async handler(ctx) {
    const c = ctx.config;
    const spec = MODEL_PRESETS[String(c.model)]!;
    const params = countParams(spec);
    const flops = flopsPerToken(spec, Number(c.seqLength));
    let memory: ReturnType<typeof memoryPerGpu>;
    try {
      memory = memoryPerGpu(
        spec,
        { tp: Number(c.tp), pp: Number(c.pp), ep: Number(c.ep), etp: Number(c.etp), cp: Number(c.cp), dp: Number(c.dp) },
        {
          microBatchSize: Number(c.microBatchSize),
          seqLength: Number(c.seqLength),
          distributedOptimizer: Boolean(c.distributedOptimizer),
          recomputeExperts: Boolean(c.recomputeExperts),
        },
      );
    } catch (err) {
      // The estimator's layout checks (divisibility) are configuration mistakes.
      throw new UsageError((err as Error).message);
    }
    if (c.json) {
      ctx.stdout.write(`${JSON.stringify({ model: spec.name, config: c, params, flopsPerToken: flops, memory }, null, 2)}\n`);
      return EXIT.ok;
    }
    const lines = [
      `${spec.name}: ${human(params.total)} parameters, ${human(params.active)} active per token`,
      `training FLOPs per token at ${c.seqLength} tokens: ${human(flops.training)} (forward ${human(flops.forward)})`,
      `layout tp ${c.tp} · pp ${c.pp} · ep ${c.ep} · etp ${c.etp} · cp ${c.cp} · dp ${c.dp}: ${memory.worldSize} GPUs, expert data parallel ${memory.edp}`,
      `memory per GPU (first pipeline stage): ${(memory.totalBytes / GiB).toFixed(1)} GiB`,
      `  weights     ${(memory.weightsBytes / GiB).toFixed(1).padStart(8)} GiB  (${human(memory.paramsPerGpu)} parameters: ${human(memory.nonExpertParamsPerGpu)} non-expert, ${human(memory.expertParamsPerGpu)} expert)`,
      `  gradients   ${(memory.gradsBytes / GiB).toFixed(1).padStart(8)} GiB`,
      `  optimizer   ${(memory.optimizerBytes / GiB).toFixed(1).padStart(8)} GiB`,
      `  activations ${(memory.activationsBytes / GiB).toFixed(1).padStart(8)} GiB`,
    ];
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};

export const moeEstimateCommands: CommandSpec[] = [moeEstimateCommand];
