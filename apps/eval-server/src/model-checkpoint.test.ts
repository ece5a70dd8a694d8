import { createRng, decodeSafetensors, encodeSafetensors, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { budgetedRng, fineTunedConfig, loadFineTuned } from './model-checkpoint.js';
import { type PointcloudFixture, pointcloudFixture } from './pointcloud-fixture.js';

/** A checkpoint's config, typed as loosely as the tests break it. */
type Config = { numClasses: number; model: { channels: number[]; depths: number[]; mlpRatio: number; mamba: { dState: number } } };

let fixture: PointcloudFixture;
beforeAll(async () => {
  fixture = await pointcloudFixture();
});

function rewrite(mutate: (file: ReturnType<typeof decodeSafetensors>) => void) {
  const file = decodeSafetensors(fixture.finetune);
  mutate(file);
  return decodeSafetensors(encodeSafetensors(file.tensors, file.metadata));
}

function withConfig(mutate: (config: Config) => void) {
  return rewrite((file) => {
    const config = JSON.parse(file.metadata.config!) as Config;
    mutate(config);
    file.metadata.config = JSON.stringify(config);
  });
}

describe('budgetedRng', () => {
  it('draws what the Rng draws, and refuses a draw past the budget before making it', () => {
    const budget = { left: 10, total: 10 };
    const rng = budgetedRng(createRng(3), budget);
    const plain = createRng(3);
    expect(Array.from(rng.uniformArray(4))).toEqual(Array.from(plain.uniformArray(4)));
    expect(Array.from(rng.fork().uniform([2, 2]).dataSync())).toEqual(Array.from(plain.fork().uniform([2, 2]).dataSync()));
    expect(budget.left).toBe(2);
    const before = tf.memory().numTensors;
    expect(() => rng.normal([1000, 1000])).toThrow("more parameters than the checkpoint's 10 values (a draw of 1000000 after 8)");
    expect(() => rng.fork().randint([3], 0, 5)).toThrow('a draw of 3 after 8');
    expect(tf.memory().numTensors).toBe(before);
    expect(rng.bernoulli([2], 0.5).shape).toEqual([2]);
    expect(budget.left).toBe(0);
  });
});

describe('loadFineTuned', () => {
  it('loads the fine-tuned model with exactly the checkpoint weights', () => {
    const file = decodeSafetensors(fixture.finetune);
    const { backbone, head, config } = loadFineTuned(file);
    expect(config.numClasses).toBe(fixture.classes);
    for (const store of [backbone.params, head]) {
      for (const [name, v] of store) expect(Array.from(v.dataSync()), name).toEqual(Array.from(file.tensors[name]!.data as Float32Array));
    }
  });

  it('refuses other kinds of checkpoints and bad configs, naming the problem', () => {
    const cases: [ReturnType<typeof decodeSafetensors>, string][] = [
      [decodeSafetensors(fixture.pretrain), 'the checkpoint is a pre-training checkpoint (backbone only, no segmentation head); a fine-tuned one (finetune.safetensors) is needed'],
      [rewrite((f) => delete f.metadata.format), 'the checkpoint is not a kiln pointcloud checkpoint (metadata format null)'],
      [rewrite((f) => delete f.metadata.config), "the checkpoint's metadata has no 'config'"],
      [rewrite((f) => (f.metadata.config = '{')), "the checkpoint's metadata 'config' is not JSON"],
      [rewrite((f) => (f.metadata.config = 'null')), "the checkpoint's metadata config is invalid"],
      [withConfig((c) => (c.model.channels = [8, -16])), "the checkpoint's metadata config is invalid: config.model.channels"],
      [withConfig((c) => (c.numClasses = 5_000_000)), 'numClasses 5000000; at most 1000 classes are scored'],
    ];
    for (const [file, message] of cases) expect(() => fineTunedConfig(file), message).toThrow(message);
  });

  it('refuses a config that describes more parameters than the checkpoint holds, before allocating them', () => {
    const cases: [(c: Config) => void, RegExp][] = [
      [(c) => (c.model.channels = [100_000, 200_000]), /a draw of 600000 after 0/],
      [(c) => (c.model.depths = [1_000_000, 1]), /more parameters than the checkpoint's \d+ values/],
      [(c) => (c.model.mlpRatio = 1e7), /a draw of \d{8,} after/],
      [(c) => (c.model.mamba.dState = 1e8), /a draw of \d{9,} after/],
      [(c) => (c.numClasses = 1000), /a draw of 8000 after/],
    ];
    for (const [mutate, message] of cases) {
      const before = tf.memory().numBytes;
      expect(() => loadFineTuned(withConfig(mutate))).toThrow(message);
      // Refused before the large allocation: at most the checkpoint's own few KB were built.
      // (What was built stays until the job's process exits, right after the refusal.)
      expect(tf.memory().numBytes - before).toBeLessThan(64 * 1024);
    }
  });

  it('refuses missing, reshaped, extra or non-F32 tensors', () => {
    const cases: [ReturnType<typeof decodeSafetensors>, string][] = [
      [rewrite((f) => delete f.tensors['seg.weight']), "the checkpoint lacks parameter 'seg.weight' of the model its config describes"],
      [rewrite((f) => {
        const w = f.tensors['seg.weight']!;
        f.tensors['seg.weight'] = { ...w, shape: [w.shape[1]!, w.shape[0]!] };
      }), "checkpoint tensor 'seg.weight' has shape"],
      [rewrite((f) => (f.tensors.extra = { dtype: 'F32', shape: [1], data: new Float32Array(1) })), "checkpoint tensor 'extra' is not a parameter of the model"],
      [rewrite((f) => (f.tensors['seg.bias'] = { dtype: 'I32', shape: f.tensors['seg.bias']!.shape, data: new Int32Array(f.tensors['seg.bias']!.data.length) })), "checkpoint tensor 'seg.bias' has dtype I32"],
    ];
    for (const [file, message] of cases) expect(() => loadFineTuned(file), message).toThrow(message);
  });
});
