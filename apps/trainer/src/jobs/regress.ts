/**
 * A tiny trainable job for the harness itself: a two-layer MLP fitting a seeded smooth
 * function with Adam on random minibatches. Small enough for tests on the pure-JS backend,
 * and it exercises everything resume must restore: weights, Adam's slots, data order.
 */
import { type FieldTable, type Rng, type SafetensorsEntry, tf } from '@kiln/tensor';
import { HARNESS_FIELDS, type TrainableJob } from '../harness/run.js';
import { modelTensors, optimizerTensors, restoreModel, restoreOptimizer } from '../harness/optimizer-state.js';

export const REGRESS_SCHEMA = {
  steps: { type: 'int', default: 200, min: 1, doc: 'optimizer steps' },
  samples: { type: 'int', default: 256, min: 2, doc: 'size of the synthetic data set' },
  features: { type: 'int', default: 8, min: 1, max: 256, doc: 'input features' },
  hidden: { type: 'int', default: 32, min: 1, max: 4096, doc: 'hidden units' },
  batchSize: { type: 'int', default: 32, min: 1, doc: 'minibatch size (drawn at random each step)' },
  lr: { type: 'number', default: 0.01, min: 0, exclusiveMin: true, doc: 'Adam learning rate' },
  stepDelayMs: { type: 'int', default: 0, min: 0, doc: 'sleep after each step (for tests that interrupt a run)' },
  ...HARNESS_FIELDS,
} satisfies FieldTable;

export interface RegressConfig {
  steps: number;
  samples: number;
  features: number;
  hidden: number;
  batchSize: number;
  lr: number;
  stepDelayMs: number;
}

export function createRegressJob(config: RegressConfig, rng: Rng): TrainableJob {
  const { samples, features, hidden } = config;
  const x = rng.normal([samples, features]);
  const trueW = rng.normal([features, 1]);
  const y = tf.tidy(() => tf.sin(tf.matMul(x, trueW)));
  const vars = {
    w1: tf.variable(rng.normal([features, hidden], 0, Math.sqrt(2 / features)), true, 'regress/w1'),
    b1: tf.variable(tf.zeros([hidden]), true, 'regress/b1'),
    w2: tf.variable(rng.normal([hidden, 1], 0, Math.sqrt(1 / hidden)), true, 'regress/w2'),
    b2: tf.variable(tf.zeros([1]), true, 'regress/b2'),
  };
  const varList = Object.values(vars);
  const optimizer = tf.train.adam(config.lr);
  const predict = (input: tf.Tensor): tf.Tensor =>
    tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(input, vars.w1), vars.b1)), vars.w2), vars.b2);

  return {
    name: 'regress',
    totalSteps: config.steps,
    async step() {
      const idx = new Int32Array(config.batchSize);
      for (let i = 0; i < idx.length; i++) idx[i] = rng.int(0, samples);
      const loss = tf.tidy(() => {
        const indices = tf.tensor1d(idx, 'int32');
        const xb = tf.gather(x, indices);
        const yb = tf.gather(y, indices);
        return optimizer.minimize(() => tf.losses.meanSquaredError(yb, predict(xb)) as tf.Scalar, true, varList)!;
      });
      const value = (await loss.data())[0]!;
      loss.dispose();
      if (config.stepDelayMs > 0) await new Promise((r) => setTimeout(r, config.stepDelayMs));
      return { loss: value };
    },
    async stateTensors() {
      return { ...modelTensors(vars), ...(await optimizerTensors(optimizer)) };
    },
    async restoreState(tensors: Record<string, SafetensorsEntry>) {
      restoreModel(vars, tensors);
      await restoreOptimizer(optimizer, tensors);
    },
    async finish() {
      const mse = tf.tidy(() => tf.losses.meanSquaredError(y, predict(x)));
      const value = (await mse.data())[0]!;
      mse.dispose();
      return { mse: value };
    },
  };
}
