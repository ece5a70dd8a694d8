import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors, tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCorpusPath, loadByteCorpus, unigramLogProbs } from './corpus.js';
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
    // the output bias starts at the byte frequencies: the first loss is about the unigram entropy
    const logp = unigramLogProbs(loadByteCorpus(defaultCorpusPath()));
    const entropy = -logp.reduce((a, l) => a + Math.exp(l) * l, 0);
    expect(Math.abs(result.initialLoss - entropy)).toBeLessThan(0.3);
    expect(result.finalLoss).toBeLessThan(result.initialLoss - 0.15);
    const r = seen.at(-1)!;
    expect(r.tokensPerSecond).toBeGreaterThan(0);
    expect(r.mfu).toBeGreaterThan(0);
    expect(r.mfu).toBeLessThan(1);
    expect(r.expertLoad).toHaveLength(1);
    expect(r.expertLoad[0]!.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
    expect(r.routerLosses[0]!.aux_loss).toBeGreaterThan(0);
    // balanced routing (not all tokens on two experts): over the run the busiest expert gets at
    // most twice the tokens of the idlest, and so does the last step's batch
    for (const load of [result.expertLoad[0]!, r.expertLoad[0]!]) {
      expect(load.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
      expect(Math.max(...load) / Math.min(...load)).toBeLessThanOrEqual(2);
    }
    const { tensors, metadata } = await loadSafetensors(path);
    expect(metadata?.step).toBe(String(MOE_LM_PRESETS.tiny.steps));
    expect(tensors['layers.0.mlp.experts.fc1']!.shape).toEqual([4, 32, 64]);
    expect(typeof result.sample).toBe('string');
  }, 120_000);

  it('resumes from a periodic checkpoint to the same weights, Adam state and loss curve bit for bit (expert bias and jitter too)', async () => {
    const config = {
      ...MOE_LM_PRESETS.tiny,
      steps: 10,
      moe: {
        ...MOE_LM_PRESETS.tiny.moe,
        routerScoreFunction: 'sigmoid' as const,
        routerEnableExpertBias: true,
        routerBiasUpdateRate: 1e-2,
        inputJitterEps: 0.05,
      },
    };
    const straightPath = join(dir, 'straight.safetensors');
    const straight = await trainMoeLm({ ...config, checkpointPath: straightPath });
    // a run that dies at step 7 after its step-4 checkpoint, then a resume to step 10
    const resumedPath = join(dir, 'resumed.safetensors');
    const crashed: number[] = [];
    await expect(
      trainMoeLm(
        { ...config, checkpointPath: resumedPath, checkpointEvery: 4 },
        {
          onStep: (r) => {
            crashed.push(r.loss);
            if (r.step === 7) throw new Error('killed');
          },
        },
      ),
    ).rejects.toThrow('killed');
    expect((await loadSafetensors(resumedPath)).metadata?.step).toBe('4');
    const resumed = await trainMoeLm({ ...config, checkpointPath: resumedPath, checkpointEvery: 4 }, { resumeFrom: resumedPath });
    expect(resumed.startStep).toBe(4);
    expect(resumed.reports.map((r) => r.step)).toEqual([5, 6, 7, 8, 9, 10]);
    const straightLosses = straight.reports.map((r) => r.loss);
    expect([...crashed.slice(0, 4), ...resumed.reports.map((r) => r.loss)]).toEqual(straightLosses);
    expect(crashed).toEqual(straightLosses.slice(0, 7));
    expect(resumed.model.blocks[0]!.moe.router.expertBias).toBeTruthy();
    const a = await loadSafetensors(straightPath);
    const b = await loadSafetensors(resumedPath);
    expect(b.metadata?.step).toBe('10');
    expect(Object.keys(b.tensors).sort()).toEqual(Object.keys(a.tensors).sort());
    expect(Object.keys(a.tensors).some((n) => n.startsWith('optim/'))).toBe(true);
    for (const name of Object.keys(a.tensors)) {
      expect(Array.from(b.tensors[name]!.data as Float32Array), name).toEqual(Array.from(a.tensors[name]!.data as Float32Array));
    }
    expect(JSON.parse(b.metadata!['kiln.moe.resume']!)).toEqual(JSON.parse(a.metadata!['kiln.moe.resume']!));
    // a changed shape is refused naming the key
    await expect(trainMoeLm({ ...config, dModel: 64 }, { resumeFrom: resumedPath })).rejects.toThrow(/config\.dModel/);
  }, 120_000);

  it('counts each step as one global batch: validation and generation evaluate, and the global aux-loss count restarts every step', async () => {
    const globalAux: number[] = [];
    const result = await trainMoeLm(
      {
        ...MOE_LM_PRESETS.tiny,
        steps: 3,
        evalEvery: 1,
        moe: { ...MOE_LM_PRESETS.tiny.moe, routerScoreFunction: 'sigmoid', routerEnableExpertBias: true, routerLoadBalancingType: 'global_aux_loss', auxLossCoeff: 1e-2 },
      },
      { onStep: (r) => globalAux.push(r.routerLosses[0]!.global_aux_loss ?? Number.NaN) },
    );
    expect(globalAux.every((v) => v > 0)).toBe(true);
    const router = result.model.blocks[0]!.moe.router;
    // after the last step (and its validation, and the sample's 64 generated bytes) nothing is counted
    expect(router.globalAuxTracker!.steps).toBe(0);
    expect(Array.from(router.expertBias!.localTokensPerExpert).every((c) => c === 0)).toBe(true);
  }, 120_000);

  it('rejects a bad config naming the field', async () => {
    await expect(trainMoeLm({ ...MOE_LM_PRESETS.tiny, heads: 0 })).rejects.toThrow(/config.heads/);
  });
});
