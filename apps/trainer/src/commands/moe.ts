/**
 * `kiln moe train` (the demo MoE language model). `kiln moe estimate` and `kiln moe plan`
 * live in moe-estimate.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  MOE_LM_PRESETS,
  type MoeLmTrainConfig,
  finalizeProcessCommunicator,
  processCommunicator,
  trainMoeLm,
} from '@kiln/moe-core';
import { type Config, type FieldTable, loadSafetensors } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS, runDirectory } from '../harness/run.js';
import { startBackend } from './shared.js';

const small = MOE_LM_PRESETS.small;
const tiny = MOE_LM_PRESETS.tiny;
const coeff = (v: number | number[] | null | undefined): number => (Array.isArray(v) ? (v[0] ?? 0) : (v ?? 0));

const TRAIN_SCHEMA = {
  layers: { type: 'int', default: small.layers, min: 1, doc: 'transformer blocks (attention + MoE FFN)' },
  dModel: { type: 'int', default: small.dModel, min: 1, doc: 'model width' },
  heads: { type: 'int', default: small.heads, min: 1, doc: 'attention heads' },
  context: { type: 'int', default: small.context, min: 2, doc: 'context length in bytes' },
  numExperts: { type: 'int', default: small.moe.numExperts, min: 1, doc: 'routed experts per layer' },
  topk: { type: 'int', default: small.moe.topk ?? 2, min: 1, doc: 'experts per token' },
  ffnHiddenSize: { type: 'int', default: small.moe.ffnHiddenSize ?? small.dModel, min: 1, doc: 'FFN width of each expert' },
  sharedExpertSize: { type: 'int', default: small.moe.sharedExpertSize ?? 0, min: 0, doc: 'shared-expert FFN width (0: none)' },
  auxLossCoeff: { type: 'number', default: coeff(small.moe.auxLossCoeff), min: 0, doc: 'load-balancing aux-loss coefficient' },
  zLossCoeff: { type: 'number', default: coeff(small.moe.zLossCoeff), min: 0, doc: 'router z-loss coefficient (0: off)' },
  batch: { type: 'int', default: small.batch, min: 1, doc: 'sequences per step' },
  steps: { type: 'int', default: small.steps, min: 1, doc: 'optimizer steps' },
  learningRate: { type: 'number', default: small.learningRate, min: 0, exclusiveMin: true, doc: 'Adam learning rate' },
  evalEvery: { type: 'int', default: small.evalEvery, min: 0, doc: 'validation loss every this many steps (0: never)' },
  corpus: { type: 'string', default: '', doc: 'text file to train on, as bytes (default: the bundled public-domain corpus)' },
  ...HARNESS_FIELDS,
  seed: { ...HARNESS_FIELDS.seed, default: small.seed },
} satisfies FieldTable;

function libraryConfig(c: Config, checkpointPath: string): Partial<MoeLmTrainConfig> {
  return {
    layers: Number(c.layers),
    dModel: Number(c.dModel),
    heads: Number(c.heads),
    context: Number(c.context),
    vocab: 256,
    moe: {
      numExperts: Number(c.numExperts),
      topk: Number(c.topk),
      ffnHiddenSize: Number(c.ffnHiddenSize),
      sharedExpertSize: Number(c.sharedExpertSize) > 0 ? Number(c.sharedExpertSize) : null,
      auxLossCoeff: Number(c.auxLossCoeff),
      zLossCoeff: Number(c.zLossCoeff) > 0 ? Number(c.zLossCoeff) : null,
    },
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
    'Examples:\n  kiln moe train --preset tiny --out runs/moe\n  kiln moe train --preset tiny --out runs/moe --resume\n  kiln moe train --num-experts 16 --topk 4 --steps 300 --server http://127.0.0.1:8787',
  schema: TRAIN_SCHEMA,
  resumable: true,
  presets: {
    small: { doc: `${small.layers} layers, ${small.moe.numExperts} experts top-${small.moe.topk}, ${small.steps} steps (about 1–2 minutes)`, values: {} },
    tiny: {
      doc: `${tiny.layers} layer, ${tiny.moe.numExperts} experts, ${tiny.steps} steps (seconds)`,
      values: {
        layers: tiny.layers,
        dModel: tiny.dModel,
        heads: tiny.heads,
        context: tiny.context,
        numExperts: tiny.moe.numExperts,
        topk: tiny.moe.topk ?? 2,
        ffnHiddenSize: tiny.moe.ffnHiddenSize ?? tiny.dModel,
        sharedExpertSize: tiny.moe.sharedExpertSize ?? 0,
        auxLossCoeff: coeff(tiny.moe.auxLossCoeff),
        zLossCoeff: coeff(tiny.moe.zLossCoeff),
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
    const c = ctx.config;
    if (Number(c.topk) > Number(c.numExperts)) throw new UsageError(`config key 'topk' (${c.topk}) must not exceed 'numExperts' (${c.numExperts})`);
    if (Number(c.dModel) % Number(c.heads) !== 0) throw new UsageError(`config key 'dModel' (${c.dModel}) must be divisible by 'heads' (${c.heads})`);
    if (Number(c.batch) % world.size !== 0) throw new UsageError(`config key 'batch' (${c.batch}) must divide evenly over the ${world.size} MPI ranks`);
    await startBackend(ctx);
    if (world.size > 1) ctx.stdout.write(`data parallel over ${world.size} MPI ranks (global batch ${c.batch})\n`);
    // --resume: every rank reads rank 0's checkpoint (only rank 0 writes one).
    const resumeFrom = rootCtx.resume ? join(runDirectory('moe train', rootCtx.config), 'model.safetensors') : undefined;
    let resumeStep = 0;
    if (resumeFrom) {
      if (!existsSync(resumeFrom)) throw new UsageError(`--resume: no checkpoint ${resumeFrom}; start without --resume`);
      const { metadata } = await loadSafetensors(resumeFrom);
      if (!metadata?.['kiln.moe.resume']) throw new UsageError(`--resume: ${resumeFrom} holds weights only (written before kiln moe train could resume); start a new --out`);
      resumeStep = Number(metadata.step);
    }
    // Resuming keeps the metric lines up to the checkpoint step (a killed run may have logged later ones).
    const recorder = await RunRecorder.open({ command: 'moe train', kind: 'moe', ...ctx }, resumeFrom ? (r) => r.step <= resumeStep : undefined);
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
    let lastLoad: number[][] = [];
    try {
      const result = await trainMoeLm(libraryConfig(c, checkpointPath), {
        signal: abort.signal,
        dataParallel: world,
        ...(resumeFrom ? { resumeFrom } : {}),
        onStep: (r) => {
          lastLoad = r.expertLoad;
          const values: Record<string, number> = { loss: r.loss, tokensPerSecond: r.tokensPerSecond, tflops: r.tflops, mfu: r.mfu };
          if (r.validationLoss !== undefined) values.validationLoss = r.validationLoss;
          r.routerLosses.forEach((losses, layer) => {
            for (const [name, v] of Object.entries(losses)) values[`layer${layer}/${name}`] = v;
          });
          recorder.log(r.step, values);
          progress.update(r.step, `loss ${r.loss.toFixed(4)} ${Math.round(r.tokensPerSecond)} tok/s`);
        },
      }).catch((err: Error) => {
        // trainMoeLm and the MoE config validation name the bad key; those are usage errors.
        if (/^(trainMoeLm: config\.|MoEConfig|validateMoEConfig)/.test(err.message) || /must be (a|an|divisible|positive|≤|≥)/.test(err.message)) throw new UsageError(err.message);
        throw err;
      });
      progress.finish();
      const layers = lastLoad.map((load, layer) => ({ layer, load }));
      const done = result.startStep + result.reports.length;
      if (layers.length || !resumeFrom) await recorder.writeJson('expert-load.json', { step: done, layers });
      if (layers.length) await recorder.result('moe', { step: done, layers });
      await recorder.close();
      ctx.stdout.write(
        `${abort.signal.aborted ? `interrupted after ${done}/${c.steps} steps` : `done: ${done} steps`}, loss ${result.initialLoss.toFixed(4)} → ${result.finalLoss.toFixed(4)} ` +
          `(mean of the last 5), ${result.parameters.total} parameters (${result.parameters.active} active), backend ${result.backend}\n` +
          `expert load (fraction of tokens) per layer: ${layers.map((l) => `[${l.load.map((v) => v.toFixed(2)).join(' ')}]`).join(' ')}\n` +
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

export const moeCommands: CommandSpec[] = [moeTrainCommand];
