/**
 * `kiln moe train` (the demo MoE language model). `kiln moe estimate` and `kiln moe plan`
 * live in moe-estimate.ts.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  LOAD_WINDOW,
  MOE_CONFIG_FIELDS,
  MOE_CONFIG_KEYS,
  MOE_LM_PRESETS,
  type MoEConfig,
  type MoEConfigInput,
  type MegatronImportOptions,
  type MoeLmTrainConfig,
  finalizeProcessCommunicator,
  processCommunicator,
  exportMegatronArgs,
  fromMegatronArgs,
  trainMoeLm,
  validateMoEConfig,
} from '@kiln/moe-core';
import { type Config, type FieldSpec, type FieldTable, loadSafetensors } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS, runDirectory } from '../harness/run.js';
import { startBackend } from './shared.js';

const small = MOE_LM_PRESETS.small;
const tiny = MOE_LM_PRESETS.tiny;
type Preset = typeof small;

/** A demo preset's MoE settings as config keys (hiddenSize and numLayers are the model's width and depth). */
function moeValues(p: Preset): Partial<Config> {
  return { ...(p.moe as Partial<Config>), hiddenSize: p.dModel, numLayers: p.layers };
}

/**
 * Every MoEConfig field from @kiln/moe-core's field table, one flag and config-file key each,
 * with the demo's `small` preset as the defaults.
 */
const MOE_FIELDS: FieldTable = Object.fromEntries(
  Object.entries(MOE_CONFIG_FIELDS).map(([key, spec]) => {
    const demo = moeValues(small)[key];
    return [key, { ...spec, required: false, ...(demo === undefined ? {} : { default: demo }) } as FieldSpec];
  }),
);

/** The tiny preset's MoE keys (the MoE layer's defaults for those it leaves out). */
const TINY_MOE_VALUES: Partial<Config> = Object.fromEntries(
  Object.entries(MOE_CONFIG_FIELDS).map(([k, spec]) => [k, moeValues(tiny)[k] ?? ('default' in spec ? (spec.default as Config[string]) : null)]),
);

const FROM_MEGATRON_FIELD = {
  fromMegatron: {
    type: 'string',
    default: '',
    maxLength: 20_000,
    doc: "Megatron-LM flags (quoted, as in a launch script) that set the MoE keys, Megatron's own defaults for the MoE keys they leave out; other flags here still win",
  },
} satisfies FieldTable;

const DEMO_FIELDS = {
  heads: { type: 'int', default: small.heads, min: 1, doc: 'attention heads (must divide hiddenSize)' },
  context: { type: 'int', default: small.context, min: 2, doc: 'context length in bytes' },
  batch: { type: 'int', default: small.batch, min: 1, doc: 'sequences per step' },
  steps: { type: 'int', default: small.steps, min: 1, doc: 'optimizer steps' },
  learningRate: { type: 'number', default: small.learningRate, min: 0, exclusiveMin: true, doc: 'Adam learning rate' },
  evalEvery: { type: 'int', default: small.evalEvery, min: 0, doc: 'validation loss every this many steps (0: never)' },
  corpus: { type: 'string', default: '', doc: 'text file to train on, as bytes (default: the bundled public-domain corpus)' },
} satisfies FieldTable;

const TRAIN_SCHEMA: FieldTable = {
  ...DEMO_FIELDS,
  ...MOE_FIELDS,
  ...FROM_MEGATRON_FIELD,
  ...HARNESS_FIELDS,
  seed: { ...HARNESS_FIELDS.seed, default: small.seed },
};

/**
 * The config after `--from-megatron`: its MoE keys replace those of the defaults, preset and
 * config file (Megatron's defaults for the keys its flags leave out), flags given on the
 * command line still win. Notes on ignored Megatron flags go to stderr.
 */
function applyMegatronFlags(ctx: Pick<CommandContext, 'config' | 'flagKeys' | 'stderr'>, layout: MegatronImportOptions = {}): Config {
  const text = String(ctx.config.fromMegatron ?? '');
  if (!text) return ctx.config;
  let imported: ReturnType<typeof fromMegatronArgs>;
  try {
    imported = fromMegatronArgs(text, layout);
  } catch (err) {
    throw new UsageError(`--from-megatron: ${(err as Error).message}`);
  }
  for (const note of imported.notes) ctx.stderr.write(`kiln: --from-megatron: ${note}\n`);
  const fromFlags = Object.fromEntries([...ctx.flagKeys].map((k) => [k, ctx.config[k]]));
  const moe = Object.fromEntries(Object.entries(imported.config).filter(([k, v]) => k in MOE_CONFIG_FIELDS && v !== undefined)) as Partial<Config>;
  return { ...ctx.config, ...moe, ...fromFlags } as Config;
}

/** The MoE layer config of a command's config (every MoEConfig key), checked by moe-core's validation. */
function moeConfigOf(c: Config): MoEConfig {
  const input = Object.fromEntries(MOE_CONFIG_KEYS.map((k) => [k, c[k]])) as unknown as MoEConfigInput;
  return validateMoEConfig(input);
}

/** The layout keys of MoEConfig: the demo runs cp and ep (trainMoeLm's contextParallel / expertParallel), dp follows. */
const LAYOUT_KEYS = ['tp', 'cp', 'ep', 'etp', 'dp', 'pp'] as const;

/**
 * The demo folds the MPI world into context-, expert- and data-parallel groups
 * (`--cp`, `--ep`; dp = ranks / cp); layouts it cannot run are usage errors, not silently
 * ignored settings.
 */
function checkDemoLayout(c: Config, worldSize: number): void {
  for (const [key, what] of [
    ['tp', 'tensor parallelism'],
    ['pp', 'pipeline parallelism'],
    ['etp', 'expert tensor parallelism (see ExpertParallelMoE in @kiln/moe-core)'],
  ] as const) {
    const v = c[key];
    if (v !== null && v !== undefined && v !== 1) throw new UsageError(`config key '${key}' is ${v}: kiln moe train runs context, expert and data parallelism only, not ${what}`);
  }
  const ranks = `${worldSize} process${worldSize === 1 ? '' : 'es'}`;
  const [cp, ep] = [Number(c.cp), Number(c.ep)];
  if (worldSize % cp !== 0) throw new UsageError(`config key 'cp' is ${cp} but ${ranks} run: context-parallel groups of ${cp} need a multiple of ${cp} MPI ranks (mpirun -np ${cp} kiln moe train ...)`);
  if (worldSize % ep !== 0) throw new UsageError(`config key 'ep' is ${ep} but ${ranks} run: expert-parallel groups of ${ep} need a multiple of ${ep} MPI ranks (mpirun -np ${ep} kiln moe train ...)`);
  if (Number(c.dp) * cp !== worldSize) {
    throw new UsageError(`config key 'dp' is ${c.dp} but ${ranks} run with cp ${cp}: the data-parallel size is the number of MPI ranks / cp (${worldSize / cp})`);
  }
  if (Number(c.context) % (2 * cp) !== 0) throw new UsageError(`config key 'context' (${c.context}) must be divisible by 2·cp = ${2 * cp} (each rank keeps two chunks of every sequence)`);
}

/** A readable corpus large enough for the context, or a usage error naming the file. */
function checkCorpus(path: string, context: number): void {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`--corpus ${path}: not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--corpus ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  // the last 5 % is the validation split; both splits need a window of context + 1 bytes
  const need = Math.max(1024, Math.ceil((context + 2) / 0.05));
  if (size < need) throw new UsageError(`--corpus ${path}: ${size} bytes is too small for context ${context} (need at least ${need}: 5 % of it is held out for validation)`);
}

function libraryConfig(c: Config, moe: MoEConfig, checkpointPath: string): Partial<MoeLmTrainConfig> {
  const { hiddenSize, numLayers, ...rest } = moe;
  // the layout goes to trainMoeLm, which folds the world; each MoE layer is configured as on one rank
  const moeRest = Object.fromEntries(Object.entries(rest).filter(([k]) => !(LAYOUT_KEYS as readonly string[]).includes(k))) as Omit<MoEConfig, 'hiddenSize' | 'numLayers'>;
  return {
    contextParallel: moe.cp,
    expertParallel: moe.ep,
    layers: numLayers,
    dModel: hiddenSize,
    heads: Number(c.heads),
    context: Number(c.context),
    vocab: 256,
    moe: moeRest,
    batch: Number(c.batch),
    steps: Number(c.steps),
    learningRate: Number(c.learningRate),
    seed: Number(c.seed),
    evalEvery: Number(c.evalEvery),
    ...(c.corpus ? { corpusPath: String(c.corpus) } : {}),
    checkpointPath,
    checkpointEvery: Number(c.checkpointEvery),
  };
}

export const moeTrainCommand: CommandSpec = {
  path: ['moe', 'train'],
  summary: 'train the demo byte-level MoE language model (loss, tokens/s, MFU, expert load per layer)',
  details:
    "Runs @kiln/moe-core's trainMoeLm. --out DIR/model.safetensors is a resumable checkpoint\n" +
    '(weights, Adam state, data order, expert bias, step), written every --checkpoint-every\n' +
    'steps and at the end; Ctrl-C stops after the current step and writes it. --resume with the\n' +
    'same --out continues from it exactly (same data order and optimizer state, also after a\n' +
    'kill) and appends to metrics.jsonl, dropping lines logged after the checkpoint step.\n\n' +
    'Every MoEConfig field of @kiln/moe-core is a key below (hiddenSize and numLayers are the\n' +
    "model's width and depth); --from-megatron reads them from Megatron-LM flags instead.\n" +
    'Under mpirun, --cp and --ep split every sequence over cp ranks and the experts over ep ranks\n' +
    '(dp = ranks / cp); --tp, --pp and --etp must stay 1.\n\n' +
    'Examples:\n  kiln moe train --preset tiny --out runs/moe\n  kiln moe train --preset tiny --out runs/moe --resume\n  kiln moe train --num-experts 16 --topk 4 --steps 300 --server http://127.0.0.1:8787\n' +
    '  kiln moe train --preset tiny --fp8 hybrid --fp8-recipe tensorwise --recompute-modules moe_act\n' +
    '  mpirun -np 4 kiln moe train --preset tiny --cp 2 --ep 2\n' +
    '  kiln moe train --preset tiny --from-megatron "--num-experts 8 --moe-router-topk 2 --moe-aux-loss-coeff 1e-2 --swiglu --moe-grouped-gemm"',
  schema: TRAIN_SCHEMA,
  resumable: true,
  presets: {
    small: { doc: `${small.layers} layers, ${small.moe.numExperts} experts top-${small.moe.topk}, ${small.steps} steps (about 1–2 minutes)`, values: {} },
    tiny: {
      doc: `${tiny.layers} layer, ${tiny.moe.numExperts} experts, ${tiny.steps} steps (seconds)`,
      values: {
        ...TINY_MOE_VALUES,
        heads: tiny.heads,
        context: tiny.context,
        batch: tiny.batch,
        steps: tiny.steps,
        learningRate: tiny.learningRate,
        evalEvery: tiny.evalEvery,
        seed: tiny.seed,
        checkpointEvery: 10,
      },
    },
  },
  defaultPreset: 'small',
  async handler(rootCtx) {
    // Under mpirun every rank trains a replica on its shard of each global batch (data
    // parallel); rank 0 reports and checkpoints, the others keep a quiet record of their own.
    const world = await processCommunicator();
    const ctx = world.rank === 0 ? rootCtx : quietRank(rootCtx, world.rank);
    // The data-parallel size is the number of MPI ranks / cp (as Megatron derives it) unless a flag or file set it.
    const derived = (cp: unknown) => (Number.isInteger(world.size / Number(cp)) ? world.size / Number(cp) : Number(ctx.config.dp));
    const withDp: Config = Number(ctx.config.dp) === 1 && !ctx.flagKeys.has('dp') ? { ...ctx.config, dp: derived(ctx.config.cp) } : ctx.config;
    const c = applyMegatronFlags({ ...ctx, config: withDp }, { worldSize: world.size });
    checkDemoLayout(c, world.size);
    const moe = moeConfigOf(c); // a MoEConfigError is a config error: exit 2 naming the key
    if (moe.hiddenSize % Number(c.heads) !== 0) throw new UsageError(`config key 'hiddenSize' (${moe.hiddenSize}) must be divisible by 'heads' (${c.heads})`);
    if (Number(c.batch) % moe.dp !== 0) throw new UsageError(`config key 'batch' (${c.batch}) must divide evenly over the ${moe.dp} data-parallel ranks`);
    if (c.corpus) checkCorpus(String(c.corpus), Number(c.context));
    await startBackend(ctx);
    if (world.size > 1) ctx.stdout.write(`${world.size} MPI ranks: cp ${moe.cp} · dp ${moe.dp} (experts ep ${moe.ep}), global batch ${c.batch}\n`);
    // --resume: every rank reads rank 0's checkpoint (only rank 0 writes one).
    const resumeFrom = rootCtx.resume ? join(runDirectory('moe train', rootCtx.config), 'model.safetensors') : undefined;
    let resumeStep = 0;
    if (resumeFrom) {
      if (moe.ep > 1) throw new UsageError('--resume: expert-parallel runs (--ep > 1) checkpoint the gathered weights only, not the sharded optimizer state, so they cannot resume');
      if (!existsSync(resumeFrom)) throw new UsageError(`--resume: no checkpoint ${resumeFrom}; start without --resume`);
      const { metadata } = await loadSafetensors(resumeFrom);
      if (!metadata?.['kiln.moe.resume']) throw new UsageError(`--resume: ${resumeFrom} holds weights only (written before kiln moe train could resume); start a new --out`);
      resumeStep = Number(metadata.step);
    }
    // Resuming keeps the metric lines up to the checkpoint step (a killed run may have logged later ones).
    // the run record keeps the effective config (Megatron flags applied, dp derived)
    const recorder = await RunRecorder.open({ command: 'moe train', kind: 'moe', ...ctx, config: c }, resumeFrom ? (r) => r.step <= resumeStep : undefined);
    const checkpointPath = join(recorder.dir, 'model.safetensors');
    if (resumeFrom) ctx.stdout.write(`resuming moe train from step ${resumeStep} (${resumeFrom})\n`);
    const progress = recorder.progress('moe', Number(c.steps));
    const abort = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (abort.signal.aborted) process.exit(EXIT.interrupted);
      ctx.stderr.write(`\n${signal}: stopping after this step and writing the checkpoint\n`);
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const result = await trainMoeLm(libraryConfig(c, moe, checkpointPath), {
        signal: abort.signal,
        dataParallel: world,
        ...(resumeFrom ? { resumeFrom } : {}),
        onStep: (r) => {
          const values: Record<string, number> = { loss: r.loss, tokensPerSecond: r.tokensPerSecond, tflops: r.tflops, mfu: r.mfu };
          if (r.validationLoss !== undefined) values.validationLoss = r.validationLoss;
          r.routerLosses.forEach((losses, layer) => {
            for (const [name, v] of Object.entries(losses)) values[`layer${layer}/${name}`] = v;
          });
          recorder.log(r.step, values);
          progress.update(r.step, `loss ${r.loss.toFixed(4)} ${Math.round(r.tokensPerSecond)} tok/s`);
        },
      }).catch((err: Error) => {
        // trainMoeLm names a bad config key ('trainMoeLm: config.<key> ...') or a setting the
        // parallel layout cannot run ('parallel LM: ...', resuming expert-parallel runs): usage errors.
        if (/^(trainMoeLm: (config\.|resuming)|parallel LM: )/.test(err.message)) throw new UsageError(err.message);
        throw err;
      });
      progress.finish();
      // the load over the last steps (one batch's content makes a single step's noisy)
      const layers = result.reports.length > 0 ? result.expertLoad.map((load, layer) => ({ layer, load })) : [];
      const done = result.startStep + result.reports.length;
      if (layers.length || !resumeFrom) await recorder.writeJson('expert-load.json', { step: done, window: Math.min(LOAD_WINDOW, result.reports.length), layers });
      if (layers.length) await recorder.result('moe', { step: done, layers });
      await recorder.close();
      ctx.stdout.write(
        `${abort.signal.aborted ? `interrupted after ${done}/${c.steps} steps` : `done: ${done} steps`}, loss ${result.initialLoss.toFixed(4)} → ${result.finalLoss.toFixed(4)} ` +
          `(mean of the last 5), ${result.parameters.total} parameters (${result.parameters.active} active), backend ${result.backend}\n` +
          `expert load (fraction of tokens over the last ${Math.min(LOAD_WINDOW, result.reports.length)} steps) per layer: ${layers.map((l) => `[${l.load.map((v) => v.toFixed(2)).join(' ')}] max/min ${(Math.max(...l.load) / Math.min(...l.load)).toFixed(2)}`).join(' ')}\n` +
          `sample: ${JSON.stringify(result.sample)}\ncheckpoint ${result.checkpoint ?? '(none)'}${abort.signal.aborted && result.checkpoint ? '; continue with --resume' : ''}\n`,
      );
      return abort.signal.aborted ? EXIT.interrupted : EXIT.ok;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await finalizeProcessCommunicator();
    }
  },
};

/** The context of a non-zero MPI rank: no printing, no server, its own run directory. */
function quietRank(ctx: CommandContext, rank: number): CommandContext {
  const out = join(runDirectory('moe train', ctx.config), `rank-${rank}`);
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const { server: _server, ...config } = ctx.config;
  return { ...ctx, quiet: true, stdout: sink, config: { ...config, out } };
}

const EXPORT_SCHEMA: FieldTable = {
  ...MOE_FIELDS,
  ...FROM_MEGATRON_FIELD,
  json: { type: 'boolean', default: false, doc: 'print JSON: the flags and what Megatron-LM cannot express' },
};

export const moeExportMegatronCommand: CommandSpec = {
  path: ['moe', 'export-megatron'],
  summary: 'the Megatron-LM flags of an MoE config (what --from-megatron reads back)',
  details:
    "Prints the Megatron-LM flags of the MoE config given by the keys below (the same keys and defaults as\n" +
    "kiln moe train): a flag for every setting that differs from Megatron's own default, so a flag left\n" +
    "out means Megatron's default. Settings Megatron cannot express are listed on stderr.\n\n" +
    'Examples:\n  kiln moe export-megatron --num-experts 64 --topk 6 --hidden-size 2048 --ffn-hidden-size 1408\n' +
    '  kiln moe export-megatron --config moe.yaml --json\n' +
    '  kiln moe export-megatron --from-megatron "--num-experts 8 --moe-router-topk 2"   # Megatron defaults filled in',
  schema: EXPORT_SCHEMA,
  presets: {
    small: { doc: "the MoE layers of kiln moe train's small preset (the defaults)", values: {} },
    tiny: { doc: "the MoE layers of kiln moe train's tiny preset", values: TINY_MOE_VALUES },
  },
  async handler(ctx) {
    const moe = moeConfigOf(applyMegatronFlags(ctx, ctx.flagKeys.has('dp') ? { dp: Number(ctx.config.dp) } : {}));
    const { args, notExpressible } = exportMegatronArgs(moe);
    if (ctx.config.json) {
      ctx.stdout.write(`${JSON.stringify({ args, notExpressible }, null, 2)}\n`);
      return EXIT.ok;
    }
    ctx.stdout.write(`${args.join(' ')}\n`);
    for (const n of notExpressible) ctx.stderr.write(`kiln: not expressible in Megatron-LM: ${n}\n`);
    return EXIT.ok;
  },
};

export const moeCommands: CommandSpec[] = [moeTrainCommand, moeExportMegatronCommand];
