/**
 * The one TensorFlow.js namespace of Kiln. Every other package imports `tf` from here,
 * never from `@tensorflow/*`, so that gradients, chained ops and backends are registered
 * exactly once and every package shares one engine.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers neither gradients nor chained ops (`x.sum()`); the
// union package `@tensorflow/tfjs` bundles these two modules for the same reason. They
// are bundled into our dist by tsup (see tsup.config.ts), because their extension-less
// relative imports cannot be loaded by Node's ESM loader.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';

export { tf };
export type Tensor = tf.Tensor;
export type Rank = tf.Rank;
export type DataType = tf.DataType;
