import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { concatScenes, type PointCloudBatch } from '../data/point-cloud.js';
import { generateSyntheticScene } from '../data/synthetic.js';
import { PRESETS } from '../train/config.js';
import { modelInput } from '../train/dataset.js';
import { buildModel, listModels } from './registry.js';
import './backbone.js';
import { selectiveScanReference, setSelectiveScan, useKernelScan } from './scan.js';
import { buildStructure } from './structure.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config = PRESETS.tiny;

function twoScenes(): PointCloudBatch[] {
  return [generateSyntheticScene(11, { points: 64 }), generateSyntheticScene(12, { points: 48 })].map((s) => ({
    coord: s.coord,
    color: s.color,
    label: s.label,
    offset: s.offset,
  }));
}

function features(batch: PointCloudBatch, crossScene: boolean): Float32Array {
  const model = buildModel(config.model, createRng(5));
  const scenes = batch.offset.length;
  const input = modelInput(batch, config, { crossScene, sceneOrder: Int32Array.from({ length: scenes }, (_, i) => i) });
  const out = model.forward(input.feat, input.structure).dataSync() as Float32Array;
  return out;
}

describe('cross-sample propagation', () => {
  it('lays out one sequence with CSP and one padded row per scene without it', () => {
    const batch = concatScenes(twoScenes());
    const opts = { gridSize: 0.1, orders: ['z', 'hilbert'] as const, levels: 2, poolStride: 4 };
    const csp = buildStructure(batch, { ...opts, orders: [...opts.orders], crossScene: true, sceneOrder: Int32Array.of(1, 0) });
    const per = buildStructure(batch, { ...opts, orders: [...opts.orders], crossScene: false });
    const l = csp.levels[0]!.layouts[0]!;
    expect(l.rows).toBe(1);
    expect(l.length % 32).toBe(0);
    // scene 1 (points 64..111) comes first in the sequence, then scene 0
    expect(Array.from(l.forward.slice(0, 48)).every((p) => p >= 64)).toBe(true);
    expect(Array.from(l.forward.slice(48, 112)).every((p) => p < 64)).toBe(true);
    const r = per.levels[0]!.layouts[1]!;
    expect(r.rows).toBe(2);
    expect(Array.from(r.forward.slice(0, 64)).every((p) => p < 64)).toBe(true);
    expect(Array.from(r.forward.slice(r.length, r.length + 48)).every((p) => p >= 64 && p < 112)).toBe(true);
    expect(r.forward[r.length + 48]).toBe(112); // padding
    // each slot map is the inverse of its sequence
    for (let p = 0; p < 112; p++) expect(r.backward[r.backwardSlot[p]!]).toBe(p);
    expect(per.levels[1]!.n).toBeLessThan(112);
  });

  it.each(['gpu-kernels', 'reference'])('carries the scan state across scene boundaries only under CSP (%s scan)', (scan) => {
    if (scan === 'reference') setSelectiveScan(null);
    else useKernelScan();
    const [a, b] = twoScenes();
    const base = concatScenes([a!, b!]);
    const perturbedA = { ...a!, color: a!.color!.map((c) => 1 - c) };
    const changed = concatScenes([perturbedA, b!]);
    const n0 = 64;
    const c = 8; // tiny preset output channels
    for (const crossScene of [true, false]) {
      const f0 = features(base, crossScene);
      const f1 = features(changed, crossScene);
      let diffB = 0;
      let diffA = 0;
      for (let i = n0 * c; i < f0.length; i++) diffB = Math.max(diffB, Math.abs(f0[i]! - f1[i]!));
      for (let i = 0; i < n0 * c; i++) diffA = Math.max(diffA, Math.abs(f0[i]! - f1[i]!));
      expect(diffA).toBeGreaterThan(1e-3); // the perturbed scene itself changes
      // Without CSP only float rounding reaches scene 2 (pooling's segment sums are prefix-sum
      // differences over the whole batch, ~1e-5); with CSP the scan state carries scene 1 over.
      if (crossScene) expect(diffB).toBeGreaterThan(1e-2);
      else expect(diffB).toBeLessThan(1e-4);
    }
    useKernelScan();
  });

  it('gives each scene the same features alone as in a per-scene batch', () => {
    const [a, b] = twoScenes();
    const both = features(concatScenes([a!, b!]), false);
    const alone = features(concatScenes([b!]), false);
    const tail = both.slice(64 * 8);
    let d = 0;
    for (let i = 0; i < alone.length; i++) d = Math.max(d, Math.abs(alone[i]! - tail[i]!));
    expect(d).toBeLessThan(1e-4);
  });

  it('gives block i the serialization order i mod #orders', () => {
    const batch = concatScenes(twoScenes());
    const scanInputs = (orders: ('z' | 'hilbert')[]): Float32Array[] => {
      const seen: Float32Array[] = [];
      setSelectiveScan((args) => {
        seen.push(args.u.dataSync() as Float32Array);
        return selectiveScanReference(args);
      }, 'spy');
      const cfg = { ...config, serialization: { ...config.serialization, orders, shuffleOrders: false } };
      const model = buildModel(cfg.model, createRng(5));
      const input = modelInput(batch, cfg, { crossScene: true });
      model.forward(input.feat, input.structure);
      useKernelScan();
      return seen;
    };
    const zOnly = scanInputs(['z']);
    const alternating = scanInputs(['z', 'hilbert']);
    expect(zOnly).toHaveLength(4); // 2 blocks × 2 directions
    expect(Array.from(alternating[0]!)).toEqual(Array.from(zOnly[0]!)); // block 0: z in both
    expect(Array.from(alternating[2]!)).not.toEqual(Array.from(zOnly[2]!)); // block 1: hilbert vs z
  });

  it('builds models by registered name and names unknown ones', () => {
    expect(listModels()).toContain('SerializedMambaUNet');
    expect(() => buildModel({ ...config.model, name: 'NoSuchNet' }, createRng(1))).toThrow(/NoSuchNet.*SerializedMambaUNet/);
  });
});
