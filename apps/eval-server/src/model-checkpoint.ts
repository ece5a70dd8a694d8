/**
 * A fine-tuned `kiln pointcloud` checkpoint (backbone + segmentation head, the config in its
 * metadata) turned into a model, checked on the way: the metadata must describe a fine-tuned
 * checkpoint with a valid config, the model that config describes may not be larger than the
 * checkpoint, and every parameter must be in the checkpoint with its exact shape.
 *
 * "Not larger than the checkpoint" is enforced while the model is built: its random
 * initialisation draws from an Rng that counts the values it hands out and refuses to go
 * past the number of values the checkpoint holds. Every weight matrix is drawn before the
 * biases and norms of the same width, so a config that declares huge channels (or depths)
 * fails at its first oversized draw, before the allocation, instead of growing the process
 * by gigabytes.
 */
import * as pc from '@kiln/pointcloud-ssl';
import { type Rng, type SafetensorsFile, type Tensor, createRng, entryToTensor } from '@kiln/tensor';
import { JobInputError, MAX_CLASSES } from './job-inputs.js';

export interface FineTunedModel {
  config: pc.PointCloudSslConfig;
  backbone: pc.PointBackbone;
  head: pc.ParamStore;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** An Rng that refuses to draw more than `budget.left` values in total (forks share it). */
export function budgetedRng(rng: Rng, budget: { left: number; total: number }): Rng {
  const spend = (n: number): void => {
    if (!(n <= budget.left)) {
      throw new JobInputError(`the checkpoint's config describes a model with more parameters than the checkpoint's ${budget.total} values (a draw of ${n} after ${budget.total - budget.left})`);
    }
    budget.left -= n;
  };
  return {
    next: () => rng.next(),
    nextUint32: () => rng.nextUint32(),
    int: (low, high) => rng.int(low, high),
    uniformArray(n, min, max) {
      spend(n);
      return rng.uniformArray(n, min, max);
    },
    normalArray(n, mean, std) {
      spend(n);
      return rng.normalArray(n, mean, std);
    },
    uniform(shape, min, max) {
      spend(size(shape));
      return rng.uniform(shape, min, max);
    },
    normal(shape, mean, std) {
      spend(size(shape));
      return rng.normal(shape, mean, std);
    },
    randint(shape, low, high) {
      spend(size(shape));
      return rng.randint(shape, low, high);
    },
    bernoulli(shape, p) {
      spend(size(shape));
      return rng.bernoulli(shape, p);
    },
    shuffle: (items) => rng.shuffle(items),
    permutation: (n) => rng.permutation(n),
    fork: () => budgetedRng(rng.fork(), budget),
    getState: () => rng.getState(),
    setState: (state) => rng.setState(state),
  };
}

/** The config in a checkpoint's metadata, checked; errors say what kind of file it is instead. */
export function fineTunedConfig(file: SafetensorsFile): pc.PointCloudSslConfig {
  const meta = file.metadata;
  if (meta.format !== 'kiln-pointcloud-ssl') {
    throw new JobInputError(`the checkpoint is not a kiln pointcloud checkpoint (metadata format ${JSON.stringify(meta.format ?? null)}); evaluate finetune.safetensors from a kiln pointcloud run`);
  }
  if (meta.kind !== 'finetune') {
    const what = meta.kind === 'pretrain' ? 'a pre-training checkpoint (backbone only, no segmentation head)' : `a '${meta.kind}' checkpoint`;
    throw new JobInputError(`the checkpoint is ${what}; a fine-tuned one (finetune.safetensors) is needed`);
  }
  if (meta.config === undefined) throw new JobInputError("the checkpoint's metadata has no 'config'");
  let config: pc.PointCloudSslConfig;
  try {
    config = JSON.parse(meta.config) as pc.PointCloudSslConfig;
  } catch {
    throw new JobInputError("the checkpoint's metadata 'config' is not JSON");
  }
  try {
    if (config === null || typeof config !== 'object') throw new Error('config is not an object');
    pc.validateConfig(config);
  } catch (err) {
    throw new JobInputError(`the checkpoint's metadata config is invalid: ${(err as Error).message}`);
  }
  if (config.numClasses > MAX_CLASSES) throw new JobInputError(`the checkpoint's metadata config has numClasses ${config.numClasses}; at most ${MAX_CLASSES} classes are scored`);
  return config;
}

/** Builds the backbone and head the checkpoint's config describes and loads its weights. */
export function loadFineTuned(file: SafetensorsFile): FineTunedModel {
  const config = fineTunedConfig(file);
  let values = 0;
  for (const [name, entry] of Object.entries(file.tensors)) {
    if (entry.dtype !== 'F32') throw new JobInputError(`checkpoint tensor '${name}' has dtype ${entry.dtype}; parameters are F32`);
    values += size(entry.shape);
  }
  const budget = { left: values, total: values };
  const rng = budgetedRng(createRng(config.seed), budget);
  let backbone: pc.PointBackbone | undefined;
  let head: pc.ParamStore | undefined;
  try {
    backbone = pc.buildModel(config.model, rng.fork());
    head = pc.initSegHead(rng.fork(), backbone.outChannels, config.numClasses);
    const wanted = new Map<string, Tensor>();
    try {
      for (const store of [backbone.params, head]) {
        for (const [name, param] of store) {
          const entry = Object.hasOwn(file.tensors, name) ? file.tensors[name] : undefined;
          if (!entry) throw new JobInputError(`the checkpoint lacks parameter '${name}' of the model its config describes`);
          if (entry.shape.join() !== param.shape.join()) {
            throw new JobInputError(`checkpoint tensor '${name}' has shape [${entry.shape.join(', ')}], the model's config needs [${param.shape.join(', ')}]`);
          }
          wanted.set(name, entryToTensor(entry, name));
        }
      }
      const extra = Object.keys(file.tensors).find((name) => !wanted.has(name));
      if (extra !== undefined) throw new JobInputError(`checkpoint tensor '${extra}' is not a parameter of the model its config describes`);
      pc.copyParams(backbone.params, wanted);
      pc.copyParams(head, wanted);
    } finally {
      for (const t of wanted.values()) t.dispose();
    }
    return { config, backbone, head };
  } catch (err) {
    if (backbone) pc.disposeParams(backbone.params);
    if (head) pc.disposeParams(head);
    throw err;
  }
}
