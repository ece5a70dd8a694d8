// Fragment voting: every point gets the summed probabilities of exactly the test fragments
// that hold it, and the class with the largest sum; scenes are scored whole, one at a time.
import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { testPipeline } from '../data/pipeline.js';
import { generateSyntheticScene } from '../data/synthetic.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { resolveConfig } from '../train/config.js';
import { initSegHead } from '../train/heads.js';
import { evaluateByVoting, predictScene } from './voting.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config = resolveConfig('tiny', { serialization: { gridSize: 0.4 } });
const rng = createRng(0);
const backbone = buildModel(config.model, rng.fork());
const head = initSegHead(rng.fork(), backbone.outChannels, config.numClasses);
const model = { backbone, head };

function scene(seed: number, points: number) {
  const s = generateSyntheticScene(seed, { points });
  return { coord: s.coord, color: s.color, normal: s.normal, label: s.label, offset: s.offset };
}

describe('fragment voting', () => {
  it('adds each fragment’s probabilities to the points it holds, once per fragment', async () => {
    const s = scene(5, 300);
    const k = config.numClasses;
    const result = await predictScene(config, model, s);
    // cells of the test grid (after CenterShift, as the pipeline voxelizes), and each point's rank in its cell
    const lo = [0, 1, 2].map((d) => Math.min(...Array.from(s.coord).filter((_, i) => i % 3 === d)));
    const hi = [0, 1, 2].map((d) => Math.max(...Array.from(s.coord).filter((_, i) => i % 3 === d)));
    const shift = [(lo[0]! + hi[0]!) / 2, (lo[1]! + hi[1]!) / 2, lo[2]!];
    const cells = new Map<string, number[]>();
    for (let p = 0; p < 300; p++) {
      const key = [0, 1, 2].map((d) => Math.floor(Math.fround(s.coord[3 * p + d]! - shift[d]!) / 0.4)).join();
      cells.set(key, [...(cells.get(key) ?? []), p]);
    }
    const maxCount = Math.max(...[...cells.values()].map((c) => c.length));
    expect(result.fragments).toBe(maxCount);
    for (const members of cells.values()) {
      members.forEach((p, j) => {
        let expected = 0;
        for (let i = 0; i < maxCount; i++) if (i % members.length === j) expected++;
        let sum = 0;
        for (let c = 0; c < k; c++) sum += result.votes[p * k + c]!;
        expect(sum).toBeCloseTo(expected, 4);
        const row = Array.from(result.votes.subarray(p * k, (p + 1) * k));
        expect(result.prediction[p]).toBe(row.indexOf(Math.max(...row)));
      });
    }
  });

  it('test-time augmentations add their votes; evaluation scores whole scenes against their labels', async () => {
    const s = scene(6, 200);
    const one = await predictScene(config, model, s);
    const twice = await predictScene(config, model, s, { ...testPipeline({ gridSize: 0.4 }), augmentations: [[], []] });
    expect(twice.fragments).toBe(2 * one.fragments);
    for (let i = 0; i < one.votes.length; i += 37) expect(twice.votes[i]).toBeCloseTo(2 * one.votes[i]!, 5);
    const scenes = [scene(7, 150), scene(8, 220)];
    const seen: number[] = [];
    const ev = await evaluateByVoting(config, model, { scenes }, { onScene: (done, _total, pred) => void seen.push(done, pred.prediction.length) });
    expect(seen).toEqual([1, 150, 2, 220]);
    expect(ev.points).toBe(370);
    expect(ev.metrics.confusion.reduce((a, b) => a + b, 0)).toBe(370);
    const unlabelled = await evaluateByVoting(config, model, { scenes: [{ ...scenes[0]!, label: new Int32Array(150).fill(-1) }] });
    expect(unlabelled.points).toBe(0);
  });
});
