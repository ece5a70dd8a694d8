/**
 * Data parallelism for the demo model: every rank holds a replica, trains on its shard of
 * the global batch, and the replicas average their gradients with one all-reduce per step,
 * so every replica applies the same update and the loss curve is that of one process
 * training on the whole global batch (to float tolerance).
 */
import { tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';

/** What data parallelism needs of a communicator (an MPI one, worker threads, or one process). */
export type DataParallelGroup = Pick<Communicator, 'rank' | 'size' | 'allReduce'>;

/** Rows [start, end) of a global batch of `batch` rows that `group.rank` trains on. */
export function batchShard(batch: number, group: Pick<DataParallelGroup, 'rank' | 'size'>): [number, number] {
  if (batch % group.size !== 0) {
    throw new Error(`data parallel: the global batch (${batch}) must divide evenly over ${group.size} ranks`);
  }
  const per = batch / group.size;
  return [group.rank * per, (group.rank + 1) * per];
}

/**
 * Averages named gradients over the group: all of them travel packed in one Float32Array
 * (one collective per step, in a fixed name order, so every rank packs identically).
 * Disposes the local gradients it replaces.
 */
export async function averageGradients(grads: tf.NamedTensorMap, group: DataParallelGroup): Promise<tf.NamedTensorMap> {
  if (group.size === 1) return grads;
  const names = Object.keys(grads).sort();
  const values = await Promise.all(names.map((n) => grads[n]!.data() as Promise<Float32Array>));
  const packed = new Float32Array(values.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of values) {
    packed.set(v, at);
    at += v.length;
  }
  const summed = await group.allReduce(packed, 'sum');
  const averaged: tf.NamedTensorMap = {};
  at = 0;
  for (const name of names) {
    const g = grads[name]!;
    const part = summed.subarray(at, at + g.size);
    const mean = new Float32Array(part.length);
    for (let i = 0; i < part.length; i++) mean[i] = part[i]! / group.size;
    averaged[name] = tf.tensor(mean, g.shape, 'float32');
    at += g.size;
    g.dispose();
  }
  return averaged;
}

/** The mean of a per-rank scalar over the group (e.g. the loss of each shard). */
export async function averageScalar(value: number, group: DataParallelGroup): Promise<number> {
  if (group.size === 1) return value;
  return (await group.allReduce(Float32Array.of(value), 'sum'))[0]! / group.size;
}
