import { createRng, saveSafetensors, tf } from '@kiln/tensor';
import type { MoEConfigInput } from '../config.js';
import { decodeBytes, defaultCorpusPath, loadByteCorpus, splitCorpus } from './corpus.js';
import { averageGradients, averageScalar, batchShard, type DataParallelGroup } from './data-parallel.js';
import { MoeLm, type MoeLmShape } from './moe-lm.js';

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
  backend: string;
  parameters: { total: number; active: number };
  sample: string;
}

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
     * Train data-parallel over this group (e.g. the MPI world from `processCommunicator()`):
     * each rank takes its shard of every global batch and gradients are averaged, so the
     * loss curve is that of one process on the whole batch. Rank 0 writes the checkpoints.
     */
    dataParallel?: DataParallelGroup;
  } = {},
): Promise<MoeLmTrainResult> {
  const c: MoeLmTrainConfig = { ...MOE_LM_PRESETS.small, ...config, moe: { ...MOE_LM_PRESETS.small.moe, ...(config.moe ?? {}) } };
  for (const k of ['layers', 'dModel', 'heads', 'context', 'batch', 'steps'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`trainMoeLm: config.${k} must be a positive integer, got ${String(c[k])}`);
  }
  if (c.vocab !== 256) throw new Error(`trainMoeLm: config.vocab must be 256 (byte-level corpus), got ${c.vocab}`);
  if (!(c.learningRate > 0)) throw new Error(`trainMoeLm: config.learningRate must be > 0, got ${c.learningRate}`);
  const tokens = loadByteCorpus(c.corpusPath ?? defaultCorpusPath());
  const { train, validation } = splitCorpus(tokens);
  const rng = createRng(c.seed);
  const model = new MoeLm(c, rng.fork());
  const vars = model.trainableVariables();
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
      return model.loss(x, y).dataSync()[0]!;
    });
  const dp = hooks.dataParallel;
  if (dp) batchShard(c.batch, dp); // fails early when the batch does not split evenly
  const save = async (step: number) => {
    if (!c.checkpointPath || (dp && dp.rank !== 0)) return;
    await saveSafetensors(c.checkpointPath, model.namedTensors(), { step: String(step), config: JSON.stringify({ ...c, checkpointPath: undefined }) });
    checkpoint = c.checkpointPath;
  };

  for (let step = 1; step <= c.steps; step++) {
    if (hooks.signal?.aborted) break;
    const t0 = performance.now();
    const { x, y } = sampleBatch(train, c.batch, c.context, dataRng);
    let loss: number;
    if (dp && dp.size > 1) {
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
    // aux-loss-free balancing (DeepSeek-V3): one expert-bias update per global batch
    for (const blk of model.blocks) blk.moe.router.expertBias?.update();
    const ms = performance.now() - t0;
    const tokensPerSecond = (c.batch * c.context) / (ms / 1000);
    const report: MoeLmStepReport = {
      step,
      loss,
      ms,
      tokensPerSecond,
      tflops: (tokensPerSecond * flopsPerToken) / 1e12,
      mfu: (tokensPerSecond * flopsPerToken) / peak,
      expertLoad: model.blocks.map((b) => {
        const counts = Array.from(b.moe.stats.tokensPerExpert);
        const total = counts.reduce((a, v) => a + v, 0) || 1;
        return counts.map((v) => v / total);
      }),
      routerLosses: model.blocks.map((b) => ({ ...b.moe.stats.losses }) as Record<string, number>),
    };
    if (c.evalEvery > 0 && (step % c.evalEvery === 0 || step === 1 || step === c.steps)) report.validationLoss = validationLoss();
    reports.push(report);
    hooks.onStep?.(report);
    if (c.checkpointEvery && step % c.checkpointEvery === 0) await save(step);
  }
  if (c.checkpointPath) await save(reports.length);
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
    backend: tf.getBackend(),
    parameters: model.parameterCounts(),
    sample,
  };
}
