import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors, tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOE_LM_PRESETS, type MoeLmStepReport, trainMoeLm } from './train.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-moe-lm-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('demo MoE language model', () => {
  it('loss falls on the KJV corpus with the tiny preset, reporting throughput, MFU and expert load; checkpoints load back', async () => {
    const seen: MoeLmStepReport[] = [];
    const path = join(dir, 'tiny.safetensors');
    const result = await trainMoeLm({ ...MOE_LM_PRESETS.tiny, checkpointPath: path }, { onStep: (r) => seen.push(r) });
    expect(seen).toHaveLength(MOE_LM_PRESETS.tiny.steps);
    expect(result.initialLoss).toBeGreaterThan(5); // ≈ ln 256 = 5.55 at the start
    expect(result.finalLoss).toBeLessThan(result.initialLoss - 1.0);
    const r = seen.at(-1)!;
    expect(r.tokensPerSecond).toBeGreaterThan(0);
    expect(r.mfu).toBeGreaterThan(0);
    expect(r.mfu).toBeLessThan(1);
    expect(r.expertLoad).toHaveLength(1);
    expect(r.expertLoad[0]!.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
    expect(r.routerLosses[0]!.aux_loss).toBeGreaterThan(0);
    const { tensors, metadata } = await loadSafetensors(path);
    expect(metadata?.step).toBe(String(MOE_LM_PRESETS.tiny.steps));
    expect(tensors['layers.0.mlp.experts.fc1']!.shape).toEqual([4, 32, 64]);
    expect(typeof result.sample).toBe('string');
  }, 120_000);

  it('rejects a bad config naming the field', async () => {
    await expect(trainMoeLm({ ...MOE_LM_PRESETS.tiny, heads: 0 })).rejects.toThrow(/config.heads/);
  });
});
