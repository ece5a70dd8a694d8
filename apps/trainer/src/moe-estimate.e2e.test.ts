/** `kiln moe estimate` and `kiln moe plan`, run as a user would. */
import { describe, expect, it } from 'vitest';
import { kiln } from './test-support.js';

describe('kiln moe estimate', () => {
  it('prints parameters and memory from a preset, and refuses impossible layouts with exit 2', async () => {
    const r = await kiln(['moe', 'estimate', '--preset', 'deepseek-v3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // DeepSeek-V3: 671 B total, 37 B active (its model card)
    expect(report.params.total / 1e9).toBeCloseTo(671, 0);
    expect(report.params.active / 1e9).toBeCloseTo(37.5, 0);
    expect(report.memory.worldSize).toBe(256);
    const flags = await kiln(['moe', 'estimate', '--model', 'qwen3-235b-a22b', '--tp', '4', '--pp', '2', '--ep', '32', '--dp', '64']);
    expect(flags.code, flags.stderr).toBe(0);
    expect(flags.stdout).toContain('Qwen3-235B-A22B');
    const bad = await kiln(['moe', 'estimate', '--ep', '7']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must be divisible by ep (7)');
    expect((await kiln(['moe', 'estimate', '--model', 'gpt-5'])).code).toBe(2);
  });

  it('estimates step time, tokens/s, TFLOPS/GPU and MFU on a GPU, and refuses what the GPU or batch cannot do', async () => {
    const r = await kiln(['moe', 'estimate', '--preset', 'deepseek-v3-gb200', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { performance, gpu } = JSON.parse(r.stdout);
    expect(gpu).toBe('GB200 NVL72');
    expect(performance.worldSize).toBe(256);
    expect(performance.stepSeconds).toBeGreaterThan(0);
    expect(performance.tokensPerSecond * performance.stepSeconds).toBeCloseTo(4096 * 4096, 0);
    expect(performance.tflopsPerGpu).toBeGreaterThan(500);
    expect(performance.mfu).toBeGreaterThan(0);
    expect(performance.mfu).toBeLessThan(1);
    const text = await kiln(['moe', 'estimate', '--preset', 'qwen3-235b-a22b-gb300']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/on 256 × GB300 NVL72, fp8: \d+\.\d+ s per step of 8192 × 4096 tokens/);
    expect(text.stdout).toMatch(/\d+ TFLOPS\/GPU \(Megatron's model FLOPs\), MFU \d+\.\d %/);
    const fp4 = await kiln(['moe', 'estimate', '--gpu', 'h100', '--precision', 'fp4']);
    expect(fp4.code).toBe(2);
    expect(fp4.stderr).toContain('H100 SXM has no FP4 tensor cores');
    const batch = await kiln(['moe', 'estimate', '--global-batch-size', '12']);
    expect(batch.code).toBe(2);
    expect(batch.stderr).toContain('globalBatchSize (12) must be divisible by microBatchSize·dp = 256');
  });

  it('--validate prints model, published and error side by side for the four published runs', async () => {
    const r = await kiln(['moe', 'estimate', '--validate']);
    expect(r.code, r.stderr).toBe(0);
    for (const label of ['DeepSeek-V3 on 256 GB300', 'DeepSeek-V3 on 256 GB200', 'Qwen3-235B-A22B on 256 GB300', 'Qwen3-235B-A22B on 256 GB200']) {
      expect(r.stdout).toMatch(new RegExp(`${label}\\s+tp1 .* fp8\\s+\\d+\\s+\\d+\\s+[+-]\\d+\\.\\d %`));
    }
    const json = JSON.parse((await kiln(['moe', 'estimate', '--validate', '--json'])).stdout);
    expect(json.validation.map((v: { publishedTflops: number }) => v.publishedTflops)).toEqual([1233, 1048, 974, 919]);
  });
});

describe('kiln moe plan', () => {
  it('ranks the layouts that fit by estimated throughput, as text and JSON', async () => {
    const args = ['moe', 'plan', '--model', 'qwen3-235b-a22b', '--gpus', '64', '--gpu', 'gb200', '--precision', 'fp8', '--top', '3'];
    const r = await kiln(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Qwen3-235B-A22B on 64 × GB200 NVL72, fp8, 1024 × 4096 tokens per step: the 3 fastest layouts that fit');
    expect(r.stdout.trim().split('\n')).toHaveLength(5);
    const json = JSON.parse((await kiln([...args, '--json'])).stdout);
    expect(json.plans).toHaveLength(3);
    const speeds = json.plans.map((p: { performance: { tokensPerSecond: number } }) => p.performance.tokensPerSecond);
    expect([...speeds].sort((a, b) => b - a)).toEqual(speeds);
  });

  it('says so (exit 1) when nothing fits, and rejects bad input with exit 2', async () => {
    const none = await kiln(['moe', 'plan', '--model', 'deepseek-v3', '--gpus', '8', '--gpu', 'h100', '--global-batch-size', '64']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no layout of DeepSeek-V3 fits 8 × H100 SXM');
    expect((await kiln(['moe', 'plan', '--gpus', '0'])).code).toBe(2);
  });
});
