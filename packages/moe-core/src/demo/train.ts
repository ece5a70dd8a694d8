import { type RngState, type SafetensorsEntry, createRng, entryToTensor, loadSafetensors, saveSafetensors, tf } from '@kiln/tensor';
import type { MoEConfigInput } from '../config.js';
import { decodeBytes, defaultCorpusPath, loadByteCorpus, splitCorpus, unigramLogProbs } from './corpus.js';
import type { Communicator } from '../comm/communicator.js';
import { LocalCommunicator } from '../comm/communicator.js';
import { averageGradients, averageScalar, batchShard, type DataParallelGroup } from './data-parallel.js';
import { MoeLm, type MoeLmShape } from './moe-lm.js';
import { ParallelLmStep } from './parallel-lm.js';

/** Peak fp32 FLOP/s of this machine: 2 cores × 2.1 GHz × 64 FLOP/cycle (AVX-512 FMA). */
export const DEFAULT_PEAK_FLOPS = 2 * 2.1e9 * 64;

/** Everything `trainMoeLm` needs; `MOE_LM_PRESETS` hold complete ones. */
export interface MoeLmTrainConfig extends MoeLmShape {
  /** Sequences per step. */
  batch: number;
  steps: number;
  learningRate: number;
  seed: number;
  /** Text file trained on, as bytes; default the bundled KJV Genesis–Leviticus. */
  corpusPath?: string;
  /** Validation loss every this many steps (0 = never). */
  evalEvery: number;
  /** Where to write safetensors checkpoints (none when unset), and how often (and at the end). */
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Peak FLOP/s used for model FLOP utilisation. */
  peakFlops?: number;
  /**
   * Context-parallel size: every sequence's tokens split over this many ranks of the world
   * (`hooks.dataParallel`), in Megatron's load-balanced causal chunks. `context` must divide
   * by 2·contextParallel. Default 1.
   */
  contextParallel?: number;
  /** Expert-parallel size: the experts split over this many ranks of the world, tokens dispatched all-to-all. Default 1. */
  expertParallel?: number;
}

/** One training step's report. */
export interface MoeLmStepReport {
  step: number;
  loss: number;
  /** Validation loss when measured this step. */
  validationLoss?: number;
  ms: number;
  tokensPerSecond: number;
  /** Achieved model TFLOP/s (model FLOPs / wall time) and model FLOP utilisation against the peak. */
  tflops: number;
  mfu: number;
  /** Per layer: fraction of routed tokens each expert received. */
  expertLoad: number[][];
  /** Per layer: aux / z losses (coefficients applied). */
  routerLosses: Record<string, number>[];
}

export interface MoeLmTrainResult {
  model: MoeLm;
  reports: MoeLmStepReport[];
  /** Loss of the first step, and the mean loss of the last five. */
  initialLoss: number;
  finalLoss: number;
  checkpoint: string | null;
  /** Steps already done by the checkpoint resumed from (0 without `resumeFrom`); `reports` start after it. */
  startStep: number;
  backend: string;
  parameters: { total: number; active: number };
  sample: string;
  /**
   * Per layer: fraction of the tokens routed to each expert over the last `LOAD_WINDOW` steps
   * (or all of them in a shorter run) — the load balance at the end of the run, without the
   * noise of one batch's content.
   */
  expertLoad: number[][];
}

/** Steps whose routed tokens `MoeLmTrainResult.expertLoad` sums. */
export const LOAD_WINDOW = 50;

const moe = (m: Omit<MoEConfigInput, 'hiddenSize'>) => m;

/** Ready configurations: `tiny` for tests (seconds), `small` the demo default (600 steps, about 1–2 minutes on kiln-native). */
export const MOE_LM_PRESETS: Record<'tiny' | 'small', MoeLmTrainConfig> = {
  tiny: {
    layers: 1,
    dModel: 32,
    heads: 2,
    context: 32,
    vocab: 256,
    moe: moe({ numExperts: 4, topk: 2, ffnHiddenSize: 32, auxLossCoeff: 1e-2 }),
    batch: 8,
    steps: 20,
    learningRate: 1e-2,
    seed: 1,
    evalEvery: 0,
  },
  small: {
    layers: 2,
    dModel: 64,
    heads: 4,
    context: 64,
    vocab: 256,
    moe: moe({ numExperts: 8, topk: 2, ffnHiddenSize: 64, sharedExpertSize: 64, auxLossCoeff: 1e-2, zLossCoeff: 1e-3 }),
    batch: 8,
    steps: 600,
    learningRate: 3e-3,
    seed: 1,
    evalEvery: 100,
  },
};

/** Random windows of `length + 1` bytes → (inputs, next-byte targets), both [batch, length]. */
function sampleBatch(data: Uint8Array, batch: number, length: number, rng: ReturnType<typeof createRng>): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = new Int32Array(batch * length);
  const y = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const start = rng.int(0, data.length - length - 1);
    for (let i = 0; i < length; i++) {
      x[b * length + i] = data[start + i]!;
      y[b * length + i] = data[start + i + 1]!;
    }
  }
  return { x: tf.tensor2d(x, [batch, length], 'int32'), y: tf.tensor2d(y, [batch, length], 'int32') };
}

/** Checkpoint tensor prefixes of the resumable state (the weights keep their plain names). */
const OPTIM_PREFIX = 'optim/';
const OPTIM_ACC_PREFIX = 'optim-acc/';
/**
 * tfjs-core's Adam keeps the running products beta1^t and beta2^t in private variables that
 * getWeights leaves out; setWeights recomputes them with pow(), which differs from the running
 * product in the last bits, so they are saved and restored as well.
 */
const ADAM_ACCUMULATORS = ['accBeta1', 'accBeta2'] as const;
/** Config keys a resumed run must share with its checkpoint (steps, evaluation and checkpointing may change). */
const RESUME_KEYS = ['layers', 'dModel', 'heads', 'context', 'vocab', 'moe', 'batch', 'learningRate', 'seed', 'corpusPath'] as const;

/** Resumable state in the checkpoint metadata (`kiln.moe.resume`, JSON). */
interface ResumeMeta {
  step: number;
  dataRng: RngState;
  /** Per layer: the aux-loss-free expert bias, or null without one. */
  expertBias: (number[] | null)[];
  /** Per layer: the MoE layer's own RNG (router jitter, stochastic rounding), or null without one. */
  layerRng: (RngState | null)[];
}

function adamAccumulators(optimizer: tf.Optimizer): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const field of ADAM_ACCUMULATORS) {
    const v = (optimizer as unknown as Record<string, unknown>)[field];
    if (v instanceof tf.Variable) out[field] = v;
  }
  return out;
}

type LayerRng = { getState(): RngState; setState(s: RngState): void } | null;
/** The MoE layer's private RNG (kept by MoELayer for router jitter and quantisation). */
const layerRng = (layer: unknown): LayerRng => ((layer as { rng?: LayerRng }).rng ?? null);

function isCommunicator(g: DataParallelGroup | Communicator): g is Communicator {
  const c = g as Partial<Communicator>;
  return typeof c.allGather === 'function' && typeof c.allToAllV === 'function' && typeof c.barrier === 'function';
}

function describeConfig(v: unknown): string {
  return JSON.stringify(v) ?? 'undefined';
}

/**
 * Trains the demo MoE language model on a byte-level public-domain corpus, calling `onStep`
 * after every step with loss, throughput, achieved TFLOP/s, MFU and per-layer expert load.
 * Partial configs are completed from the `small` preset. Checkpoints are safetensors files
 * (weights under Megatron-like names; config and step in the metadata).
 */
export async function trainMoeLm(
  config: Partial<MoeLmTrainConfig> = {},
  hooks: {
    onStep?: (r: MoeLmStepReport) => void;
    signal?: AbortSignal;
    /**
     * The ranks to train over (e.g. the MPI world from `processCommunicator()`): data
     * parallel by default — each rank takes its shard of every global batch and gradients are
     * averaged, so the loss curve is that of one process on the whole batch. With
     * `contextParallel` or `expertParallel` > 1 the world (a full Communicator) is folded into
     * context-, expert- and data-parallel groups (`ParallelLmStep`). Rank 0 writes the
     * checkpoints.
     */
    dataParallel?: DataParallelGroup | Communicator;
    /**
     * A checkpoint written by an earlier `trainMoeLm` with the same config (steps, evalEvery
     * and checkpointing may differ): weights, Adam state, data order, expert bias and step are
     * restored and training continues at the next step exactly as an uninterrupted run would.
     * Under `dataParallel` every rank reads it.
     */
    resumeFrom?: string;
  } = {},
): Promise<MoeLmTrainResult> {
  const c: MoeLmTrainConfig = { ...MOE_LM_PRESETS.small, ...config, moe: { ...MOE_LM_PRESETS.small.moe, ...(config.moe ?? {}) } };
  for (const k of ['layers', 'dModel', 'heads', 'context', 'batch', 'steps'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`trainMoeLm: config.${k} must be a positive integer, got ${String(c[k])}`);
  }
  for (const k of ['contextParallel', 'expertParallel'] as const) {
    if (c[k] !== undefined && (!Number.isInteger(c[k]) || c[k]! < 1)) throw new Error(`trainMoeLm: config.${k} must be a positive integer, got ${String(c[k])}`);
  }
  if (c.vocab !== 256) throw new Error(`trainMoeLm: config.vocab must be 256 (byte-level corpus), got ${c.vocab}`);
  if (!(c.learningRate > 0)) throw new Error(`trainMoeLm: config.learningRate must be > 0, got ${c.learningRate}`);
  const tokens = loadByteCorpus(c.corpusPath ?? defaultCorpusPath());
  const { train, validation } = splitCorpus(tokens);
  const rng = createRng(c.seed);
  const model = new MoeLm(c, rng.fork());
  // the output bias starts at the byte frequencies, so hidden states need no shared direction for them (see unigramLogProbs)
  tf.tidy(() => model.headBias.assign(tf.tensor1d(unigramLogProbs(train))));
  const cp = c.contextParallel ?? 1;
  const ep = c.expertParallel ?? 1;
  let parallel: ParallelLmStep | null = null;
  if (cp > 1 || ep > 1) {
    const world = hooks.dataParallel ?? new LocalCommunicator();
    if (!isCommunicator(world)) throw new Error('trainMoeLm: contextParallel / expertParallel > 1 need hooks.dataParallel to be a full Communicator');
    if (c.context % (2 * cp) !== 0) throw new Error(`trainMoeLm: config.context (${c.context}) must be divisible by 2·contextParallel = ${2 * cp}`);
    parallel = await ParallelLmStep.create(model, world, { cp, ep });
    if (c.batch % parallel.groups.dp !== 0) throw new Error(`trainMoeLm: config.batch (${c.batch}) must divide evenly over the ${parallel.groups.dp} data-parallel ranks`);
    if (hooks.resumeFrom && ep > 1) throw new Error('trainMoeLm: resuming with expertParallel > 1 is not supported (its checkpoints hold weights, not the sharded optimizer state)');
  }
  const vars = parallel ? parallel.trainableVariables() : model.trainableVariables();
  const optimizer = tf.train.adam(c.learningRate);
  const flopsPerToken = model.flopsPerToken(c.context);
  const peak = c.peakFlops ?? DEFAULT_PEAK_FLOPS;
  const dataRng = rng.fork();
  const evalRng = createRng(c.seed + 1000);
  const reports: MoeLmStepReport[] = [];
  let checkpoint: string | null = null;

  const validationLoss = () =>
    tf.tidy(() => {
      const { x, y } = sampleBatch(validation, c.batch, c.context, createRng(evalRng.getState()));
      return model.loss(x, y, { training: false }).dataSync()[0]!;
    });
  const dp = hooks.dataParallel;
  if (dp && !parallel) batchShard(c.batch, dp); // fails early when the batch does not split evenly
  const save = async (step: number) => {
    if (!c.checkpointPath) return;
    await parallel?.syncModel(); // a collective: before rank 0 alone goes on
    if (dp && dp.rank !== 0) return;
    const tensors: Record<string, tf.Tensor> = { ...model.namedTensors() };
    if (ep > 1) {
      // expert-parallel runs checkpoint the gathered weights only: their optimizer state is sharded
      await saveSafetensors(c.checkpointPath, tensors, { step: String(step), config: JSON.stringify({ ...c, checkpointPath: undefined }) });
      checkpoint = c.checkpointPath;
      return;
    }
    // Slot order matters to setWeights (it matches slots to variables by position): the index leads the name.
    // Slots are named after the weights' checkpoint names (tfjs variable names differ between processes).
    const byVariable = new Map(Object.entries(model.namedTensors()).map(([name, v]) => [v.name, name]));
    (await optimizer.getWeights()).forEach((w, i) => {
      const cut = w.name.lastIndexOf('/');
      const owner = cut > 0 ? byVariable.get(w.name.slice(0, cut)) : undefined;
      tensors[`${OPTIM_PREFIX}${String(i).padStart(4, '0')}:${owner ? `${owner}${w.name.slice(cut)}` : w.name}`] = w.tensor;
    });
    for (const [field, v] of Object.entries(adamAccumulators(optimizer))) tensors[`${OPTIM_ACC_PREFIX}${field}`] = v;
    const resume: ResumeMeta = {
      step,
      dataRng: dataRng.getState(),
      expertBias: model.blocks.map((b) => (b.moe.router.expertBias ? Array.from(b.moe.router.expertBias.bias) : null)),
      layerRng: model.blocks.map((b) => layerRng(b.moe)?.getState() ?? null),
    };
    await saveSafetensors(c.checkpointPath, tensors, {
      step: String(step),
      config: JSON.stringify({ ...c, checkpointPath: undefined }),
      'kiln.moe.resume': JSON.stringify(resume),
    });
    checkpoint = c.checkpointPath;
  };

  let startStep = 0;
  if (hooks.resumeFrom) {
    startStep = await restore(hooks.resumeFrom);
    parallel?.loadExpertBias();
  }
  async function restore(path: string): Promise<number> {
    const { tensors, metadata } = await loadSafetensors(path);
    const meta = metadata ?? {};
    if (!meta['kiln.moe.resume']) throw new Error(`trainMoeLm: ${path} holds no resumable state (written before resume existed?)`);
    const saved = JSON.parse(meta.config ?? '{}') as Record<string, unknown>;
    for (const key of RESUME_KEYS) {
      if (describeConfig(saved[key]) !== describeConfig(c[key])) {
        throw new Error(`trainMoeLm: config.${key} is ${describeConfig(c[key])} but the checkpoint ${path} was trained with ${describeConfig(saved[key])}`);
      }
    }
    const state = JSON.parse(meta['kiln.moe.resume']) as ResumeMeta;
    const entry = (name: string): SafetensorsEntry => {
      const e = tensors[name];
      if (!e) throw new Error(`trainMoeLm: checkpoint ${path} lacks tensor '${name}'`);
      return e;
    };
    for (const [name, v] of Object.entries(model.namedTensors())) {
      const t = entryToTensor(entry(name), name);
      if (t.shape.join(',') !== v.shape.join(',')) throw new Error(`trainMoeLm: checkpoint tensor '${name}' has shape [${t.shape}], the model expects [${v.shape}]`);
      v.assign(t);
      t.dispose();
    }
    const slots = Object.keys(tensors)
      .filter((n) => n.startsWith(OPTIM_PREFIX))
      .sort();
    if (slots.length > 0) {
      const byName = model.namedTensors();
      const weights = slots.map((n) => {
        const saved = n.slice(n.indexOf(':') + 1);
        const cut = saved.lastIndexOf('/');
        const owner = cut > 0 ? byName[saved.slice(0, cut)] : undefined;
        return { name: owner ? `${owner.name}${saved.slice(cut)}` : saved, tensor: entryToTensor(tensors[n]!, n) };
      });
      await optimizer.setWeights(weights);
      tf.dispose(weights.map((w) => w.tensor));
    }
    for (const [field, v] of Object.entries(adamAccumulators(optimizer))) {
      const name = `${OPTIM_ACC_PREFIX}${field}`;
      if (!tensors[name]) continue;
      const t = entryToTensor(tensors[name]!, name);
      v.assign(t);
      t.dispose();
    }
    dataRng.setState(state.dataRng);
    model.blocks.forEach((b, l) => {
      const bias = state.expertBias[l];
      if (b.moe.router.expertBias && bias) b.moe.router.expertBias.bias = Float32Array.from(bias);
      const r = layerRng(b.moe);
      const s = state.layerRng?.[l];
      if (r && s) r.setState(s);
    });
    return state.step;
  }
  let lastStep = startStep;
  const recentCounts: number[][][] = [];

  for (let step = startStep + 1; step <= c.steps; step++) {
    if (hooks.signal?.aborted) break;
    const t0 = performance.now();
    const { x, y } = sampleBatch(train, c.batch, c.context, dataRng);
    let loss: number;
    let parallelReport: Awaited<ReturnType<ParallelLmStep['step']>> | null = null;
    if (parallel) {
      parallelReport = await parallel.step(x.dataSync() as Int32Array, y.dataSync() as Int32Array, c.batch, c.context, optimizer);
      loss = parallelReport.loss;
    } else if (dp && dp.size > 1) {
      const [start, end] = batchShard(c.batch, dp);
      const xs = tf.slice(x, [start, 0], [end - start, c.context]);
      const ys = tf.slice(y, [start, 0], [end - start, c.context]);
      const { value, grads } = tf.variableGrads(() => model.loss(xs, ys) as tf.Scalar, vars);
      const averaged = await averageGradients(grads, dp);
      optimizer.applyGradients(averaged as unknown as Parameters<typeof optimizer.applyGradients>[0]);
      tf.dispose(Object.values(averaged));
      loss = await averageScalar((await value.data())[0]!, dp);
      tf.dispose([xs, ys, value]);
    } else {
      const lossT = optimizer.minimize(() => model.loss(x, y), true, vars)!;
      loss = (await lossT.data())[0]!;
      lossT.dispose();
    }
    x.dispose();
    y.dispose();
    // end of the global batch: expert-bias update, fresh global aux-loss counts, delayed FP8 scales
    if (parallel) await parallel.endStep();
    else for (const blk of model.blocks) blk.moe.endStep();
    const ms = performance.now() - t0;
    const tokensPerSecond = (c.batch * c.context) / (ms / 1000);
    const stepCounts = model.blocks.map((b, l) => Array.from(parallelReport ? parallelReport.tokensPerExpert[l]! : b.moe.stats.tokensPerExpert));
    const report: MoeLmStepReport = {
      step,
      loss,
      ms,
      tokensPerSecond,
      tflops: (tokensPerSecond * flopsPerToken) / 1e12,
      mfu: (tokensPerSecond * flopsPerToken) / peak,
      expertLoad: stepCounts.map((counts) => {
        const total = counts.reduce((a, v) => a + v, 0) || 1;
        return counts.map((v) => v / total);
      }),
      routerLosses: parallelReport ? parallelReport.routerLosses : model.blocks.map((b) => ({ ...b.moe.stats.losses }) as Record<string, number>),
    };
    if (c.evalEvery > 0 && (step % c.evalEvery === 0 || step === 1 || step === c.steps)) {
      await parallel?.syncModel();
      report.validationLoss = validationLoss();
    }
    reports.push(report);
    recentCounts.push(stepCounts);
    if (recentCounts.length > LOAD_WINDOW) recentCounts.shift();
    lastStep = step;
    hooks.onStep?.(report);
    if (c.checkpointEvery && step % c.checkpointEvery === 0) await save(step);
  }
  if (c.checkpointPath) await save(lastStep);
  else await parallel?.syncModel();
  const prompt = new TextEncoder().encode('And God said');
  const sample = decodeBytes(model.generate(prompt, 64, { temperature: 0.8, rng: createRng(c.seed + 7) }));
  const last = reports.slice(-5);
  const mean = (rs: MoeLmStepReport[]) => rs.reduce((a, r) => a + r.loss, 0) / Math.max(1, rs.length);
  return {
    model,
    reports,
    initialLoss: reports[0]?.loss ?? Number.NaN,
    finalLoss: mean(last),
    checkpoint,
    startStep,
    backend: tf.getBackend(),
    parameters: model.parameterCounts(),
    sample,
    expertLoad: model.blocks.map((_, l) => {
      const sums = recentCounts.reduce((acc, counts) => acc.map((v, e) => v + counts[l]![e]!), new Array<number>(c.moe.numExperts).fill(0));
      const total = sums.reduce((a, v) => a + v, 0) || 1;
      return sums.map((v) => v / total);
    }),
  };
}
