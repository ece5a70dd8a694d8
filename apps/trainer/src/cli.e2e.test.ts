/**
 * End-to-end tests of the built `kiln` binary: exit codes, config files and flags, and
 * exact resume after SIGKILL and after Ctrl-C (SIGINT).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MOE_CONFIG_FIELDS, MOE_CONFIG_KEYS } from '@kiln/moe-core';
import { loadSafetensors } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { countLines, kiln, losses, spawnKiln, startFakeEvalServer, tempDir, waitFor } from './test-support.js';

const TINY = ['--preset', 'tiny', '--quiet'];

async function weights(dir: string): Promise<Record<string, number[]>> {
  const { tensors, metadata } = await loadSafetensors(join(dir, 'checkpoint.safetensors'));
  const out: Record<string, number[]> = { step: [Number(metadata?.['kiln.step'])] };
  for (const [name, entry] of Object.entries(tensors)) out[name] = Array.from(entry.data as Float32Array);
  return out;
}

describe('kiln usage', () => {
  it('prints help with exit 0 and refuses bad usage with exit 2', async () => {
    const help = await kiln(['regress', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--checkpoint-every');
    expect((await kiln(['--help'])).code).toBe(0);
    expect((await kiln(['pointcloud', '--help'])).code).toBe(0);
    expect((await kiln([])).code).toBe(2);
    const unknown = await kiln(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badFlag = await kiln(['regress', '--steps', 'many']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('flag --steps must be an integer ≥ 1, got "many"');
    const unknownFlag = await kiln(['regress', '--stepz', '3']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("'--stepz'");
    expect((await kiln(['moe', 'frob'])).code).toBe(2);
  });

  it('validates config files, naming the key', async () => {
    const dir = tempDir();
    const yaml = join(dir, 'bad.yaml');
    writeFileSync(yaml, 'steps: 5\nlearningRate: 0.1\n');
    const r1 = await kiln(['regress', '--config', yaml]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`config key 'learningRate' in ${yaml} is not known`);
    const json = join(dir, 'bad.json');
    writeFileSync(json, JSON.stringify({ lr: 'fast' }));
    const r2 = await kiln(['regress', '--config', json]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`config key 'lr' in ${json} must be a number > 0, got "fast"`);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'steps: [1,\n');
    expect((await kiln(['regress', '--config', broken])).code).toBe(2);
    expect((await kiln(['regress', '--config', join(dir, 'missing.yaml')])).code).toBe(2);
  });

  it('lets flags override the config file, which overrides the preset', async () => {
    const dir = tempDir();
    const yaml = join(dir, 'run.yaml');
    writeFileSync(yaml, 'steps: 7\nhidden: 4\n');
    const out = join(dir, 'run');
    const r = await kiln(['regress', ...TINY, '--config', yaml, '--steps', '5', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(countLines(join(out, 'metrics.jsonl'))).toBe(6); // 5 steps + the final evaluation line
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config).toMatchObject({ steps: 5, hidden: 4, samples: 64 });
    expect((await weights(out))['model/w1']!.length).toBe(8 * 4);
  });
});

describe('kiln backends and bench', () => {
  it('lists backends with reasons', async () => {
    const r = await kiln(['backends', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { chosen: string; backends: { name: string; available: boolean; detail: string }[] };
    expect(report.chosen).toBe('cpu');
    expect(report.backends.find((b) => b.name === 'cpu')?.available).toBe(true);
    for (const b of report.backends) if (!b.available) expect(b.detail.length).toBeGreaterThan(0);
  });

  it('benchmarks the cpu backend', async () => {
    const r = await kiln(['bench', '--preset', 'tiny', '--backends', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x: { task: string }) => x.task)).toEqual(['matmul 32x32', 'mlp train step 256x64x128']);
    expect((await kiln(['bench', '--sizes', '0'])).code).toBe(2);
  });
});

describe('kiln moe train', () => {
  it('trains the tiny preset, logs metrics, writes the checkpoint and sends expert load per layer', async () => {
    const fake = await startFakeEvalServer();
    try {
      const out = join(tempDir(), 'moe');
      const r = await kiln(['moe', 'train', '--preset', 'tiny', '--steps', '8', '--out', out, '--server', fake.url, '--token', 't']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/done: 8 steps, loss \d+\.\d+ → \d+\.\d+/);
      expect(countLines(join(out, 'metrics.jsonl'))).toBe(8);
      const { tensors, metadata } = await loadSafetensors(join(out, 'model.safetensors'));
      expect(Object.keys(tensors).length).toBeGreaterThan(3);
      expect(metadata?.step).toBe('8');
      const moe = fake.requests.find((q) => q.url === '/api/runs/run-1/results/moe')!.body;
      expect(moe.layers).toHaveLength(1);
      const load: number[] = moe.layers[0].load;
      expect(load).toHaveLength(4);
      expect(load.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    } finally {
      fake.close();
    }
  });

  it('stops on Ctrl-C with exit 130 and a resumable checkpoint, and refuses --resume without a checkpoint or with a changed shape, and bad shapes, with exit 2', async () => {
    const out = join(tempDir(), 'moe');
    const run = spawnKiln(['moe', 'train', '--preset', 'tiny', '--steps', '500', '--out', out]);
    await waitFor(() => countLines(join(out, 'metrics.jsonl')) >= 3, 60_000, '3 steps');
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toContain('interrupted after');
    const { metadata } = await loadSafetensors(join(out, 'model.safetensors'));
    expect(Number(metadata?.step)).toBeLessThan(500);
    expect(r.stdout).toContain('continue with --resume');
    const noCheckpoint = await kiln(['moe', 'train', '--preset', 'tiny', '--resume', '--out', join(tempDir(), 'empty')]);
    expect(noCheckpoint.code).toBe(2);
    expect(noCheckpoint.stderr).toContain('--resume: no checkpoint');
    const changed = await kiln(['moe', 'train', '--preset', 'tiny', '--resume', '--out', out, '--hidden-size', '64']);
    expect(changed.code, changed.stderr).toBe(2);
    expect(changed.stderr).toContain('config.dModel');
    const bad = await kiln(['moe', 'train', '--preset', 'tiny', '--topk', '9']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('topk: topk (9) must be ≤ numExperts (4)');
  });
});

describe('kiln moe train: every MoEConfig field, usage errors, Megatron-LM flags', () => {
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

  it('--help lists every MoEConfig field as a flag with its doc', async () => {
    const help = await kiln(['moe', 'train', '--help']);
    expect(help.code).toBe(0);
    for (const key of MOE_CONFIG_KEYS) {
      expect(help.stdout, key).toMatch(new RegExp(`\\n  ${key} +--${kebab(key)}\\b`));
      expect(help.stdout).toContain(MOE_CONFIG_FIELDS[key].doc);
    }
    expect(help.stdout).toContain('--from-megatron');
  });

  it('bad settings are usage errors (exit 2) naming the problem, never a stack trace', async () => {
    for (const [args, message] of [
      [['--topk', '1'], 'routerPreSoftmax: must be true when topk is 1 with softmax scores'],
      [['--corpus', '/no/such/corpus.txt'], '--corpus /no/such/corpus.txt: no such file'],
      [['--ep', '2'], "config key 'ep' is 2 but 1 process run: expert-parallel groups of 2 need a multiple of 2 MPI ranks"],
      [['--etp', '2'], "config key 'etp' is 2: kiln moe train runs context, expert and data parallelism only, not expert tensor parallelism"],
      [['--fp8', 'e5m2'], "flag --fp8 must be one of 'e4m3', 'hybrid', or null, got \"e5m2\""],
      [['--fp8', 'e4m3', '--recompute-modules', 'moe_act'], "delayed FP8 scaling does not support 'moe_act' recompute"],
      [['--from-megatron', '--moe-router-topk two'], "--from-megatron: Megatron flags: --moe-router-topk two: 'two' is not a number"],
    ] as const) {
      const r = await kiln(['moe', 'train', ...TINY, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('config-file keys reach the MoE layer: FP8 with moe_act recompute and offloading, no grouped GEMM', async () => {
    const dir = tempDir();
    const file = join(dir, 'moe.yaml');
    writeFileSync(file, 'fp8: hybrid\nfp8Recipe: tensorwise\nrecomputeModules: [moe_act]\noffloadModules: [expert_fc1]\nsteps: 2\n');
    const r = await kiln(['moe', 'train', ...TINY, '--config', file, '--out', join(dir, 'run')]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(dir, 'run', 'run.json'), 'utf8'));
    expect(run.config).toMatchObject({ fp8: 'hybrid', fp8Recipe: 'tensorwise', recomputeModules: ['moe_act'], offloadModules: ['expert_fc1'] });
    const loop = await kiln(['moe', 'train', ...TINY, '--no-grouped-gemm', '--steps', '2', '--out', join(dir, 'loop')]);
    expect(loop.code, loop.stderr).toBe(0);
  });

  it('export-megatron prints the flags that differ from Megatron-LM defaults, and --from-megatron reads them back', async () => {
    const plain = await kiln(['moe', 'export-megatron', '--preset', 'tiny']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toBe(
      '--num-layers 1 --hidden-size 32 --num-experts 4 --moe-ffn-hidden-size 32 --moe-aux-loss-coeff 0.01 --moe-grouped-gemm --moe-token-dispatcher-type alltoall --swiglu',
    );
    const flags = ['--topk', '4', '--num-experts', '16', '--router-score-function', 'sigmoid', '--router-enable-expert-bias', '--fp8', 'hybrid', '--fp8-recipe', 'mxfp8', '--recompute-modules', 'moe_act,shared_experts', '--shared-expert-size', '128'];
    const exported = await kiln(['moe', 'export-megatron', ...flags]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('--recompute-granularity selective --recompute-modules moe_act shared_experts');
    const back = await kiln(['moe', 'export-megatron', '--from-megatron', exported.stdout.trim()]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toBe(exported.stdout);
    // Megatron's own defaults for what the flags leave out, and flags on the command line still win
    const json = await kiln(['moe', 'export-megatron', '--from-megatron', '--num-experts 8 --hidden-size 64 --lr 3e-4', '--topk', '3', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).args.join(' ')).toBe('--num-layers 2 --hidden-size 64 --num-experts 8 --moe-ffn-hidden-size 256 --moe-router-topk 3 --openai-gelu');
    expect(json.stderr).toContain('--lr: not an MoE-layer setting, ignored');
    const trained = await kiln(['moe', 'train', ...TINY, '--steps', '2', '--from-megatron', '--num-layers 1 --hidden-size 32 --num-experts 4 --moe-ffn-hidden-size 32 --swiglu --moe-grouped-gemm', '--out', join(tempDir(), 'mega')]);
    expect(trained.code, trained.stderr).toBe(0);
  });
});

describe('kiln pointcloud', () => {
  const PC = ['--preset', 'tiny', '--quiet'];
  // Mid-phase checkpoints and exact resume: pointcloud-resume.e2e.test.ts.

  it('pre-trains, fine-tunes and evaluates the tiny preset, reporting mIoU to the server', async () => {
    const fake = await startFakeEvalServer();
    try {
      const out = join(tempDir(), 'pc');
      const r = await kiln(['pointcloud', ...PC, '--out', out, '--server', fake.url, '--token', 't']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/mIoU \d+\.\d\d +mAcc/);
      expect(r.stdout).toContain('IoU per class:');
      const evaluation = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      expect(evaluation.classes).toHaveLength(13);
      expect(evaluation.mIoU).toBeGreaterThanOrEqual(0);
      const phases = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).phase);
      expect(phases).toEqual(['pretrain', 'pretrain', 'pretrain', 'finetune', 'finetune', 'finetune', 'final']);
      const result = fake.requests.find((q) => q.url === '/api/runs/run-1/results/pointcloud')!.body;
      expect(result.miou).toBeCloseTo(evaluation.mIoU, 12);
      expect(result.pointsArtifact).toBe('val-scenes.points.json');
      const uploads = fake.requests.filter((q) => q.method === 'PUT').map((q) => q.url);
      expect(uploads).toEqual(['/api/runs/run-1/artifacts/finetune.safetensors', '/api/runs/run-1/artifacts/val-scenes.points.json']);
      const view = fake.requests.find((q) => q.url.endsWith('val-scenes.points.json'))!.body;
      expect(view.positions.length).toBe(3 * view.labels.length);
      expect(view.predictions.length).toBe(view.labels.length);

      // eval of the written checkpoint gives the same numbers
      const again = await kiln(['pointcloud', 'eval', '--quiet', '--checkpoint', join(out, 'finetune.safetensors'), '--out', join(out, 'eval')]);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'eval', 'eval.json'), 'utf8')).mIoU).toBe(evaluation.mIoU);
    } finally {
      fake.close();
    }
  });

  it('refuses bad settings with exit 2 naming the key', async () => {
    const batch = await kiln(['pointcloud', 'pretrain', ...PC, '--pretrain-batch-scenes', '99', '--out', join(tempDir(), 'x')]);
    expect(batch.code).toBe(2);
    expect(batch.stderr).toContain("config key 'pretrainBatchScenes'");
    expect((await kiln(['pointcloud', 'eval'])).code).toBe(2);
    expect((await kiln(['pointcloud', 'eval', '--checkpoint', '/nonexistent.safetensors'])).code).toBe(2);
    expect((await kiln(['pointcloud', 'finetune', ...PC, '--finetune-mode', 'magic'])).code).toBe(2);
  });
});

describe('kiln resume', () => {
  it('continues exactly after SIGKILL: same final weights, optimizer state and losses', async () => {
    const dir = tempDir();
    const common = ['regress', ...TINY, '--steps', '60', '--step-delay-ms', '15', '--checkpoint-every', '5'];
    const straight = join(dir, 'straight');
    expect((await kiln([...common, '--out', straight])).code).toBe(0);

    const killed = join(dir, 'killed');
    const run = spawnKiln([...common, '--out', killed]);
    await waitFor(() => countLines(join(killed, 'metrics.jsonl')) >= 23, 60_000, '23 steps');
    run.child.kill('SIGKILL');
    const first = await run.done;
    expect(first.signal).toBe('SIGKILL');
    const resumed = await kiln([...common, '--out', killed, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming regress from step (2\d)/);

    const a = await weights(straight);
    const b = await weights(killed);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    expect(Object.keys(a).some((k) => k.startsWith('optim/'))).toBe(true);
    expect(b).toEqual(a); // bit for bit
    expect(losses(killed)).toEqual(losses(straight));
  });

  it('checkpoints on Ctrl-C, exits 130, and resumes to the same result', async () => {
    const dir = tempDir();
    const common = ['regress', ...TINY, '--steps', '30', '--step-delay-ms', '20', '--checkpoint-every', '100'];
    const straight = join(dir, 'straight');
    expect((await kiln([...common, '--out', straight])).code).toBe(0);
    const out = join(dir, 'interrupted');
    const run = spawnKiln([...common, '--out', out]);
    await waitFor(() => countLines(join(out, 'metrics.jsonl')) >= 8, 60_000, '8 steps');
    run.child.kill('SIGINT');
    const first = await run.done;
    expect(first.code, first.stderr).toBe(130);
    expect(first.stdout).toContain('continue with --resume');
    const stopped = (await weights(out)).step![0]!;
    expect(stopped).toBeGreaterThanOrEqual(8);
    expect(stopped).toBeLessThan(30);
    expect(countLines(join(out, 'metrics.jsonl'))).toBe(stopped);
    const resumed = await kiln([...common, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await weights(out)).toEqual(await weights(straight));
  });

  it('refuses --resume without a checkpoint or with a changed config (exit 2)', async () => {
    const dir = tempDir();
    const out = join(dir, 'r');
    expect((await kiln(['regress', ...TINY, '--out', out, '--resume'])).code).toBe(2);
    expect((await kiln(['regress', ...TINY, '--steps', '3', '--out', out])).code).toBe(0);
    const changed = await kiln(['regress', ...TINY, '--steps', '3', '--lr', '0.5', '--out', out, '--resume']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain("config key 'lr' is 0.5 now but was 0.01");
  });
});

describe('kiln → eval server', () => {
  it('creates the run and sends every metric point with the bearer token', async () => {
    const fake = await startFakeEvalServer();
    try {
      const out = join(tempDir(), 'r');
      const r = await kiln(['regress', ...TINY, '--steps', '12', '--out', out, '--server', fake.url, '--token', 'sekret']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('warning');
      const { requests } = fake;
      expect(requests[0]).toMatchObject({ method: 'POST', url: '/api/runs', auth: 'Bearer sekret' });
      expect(requests[0]!.body.config.steps).toBe(12);
      const points = requests.slice(1).flatMap((q) => {
        expect(q.url).toBe('/api/runs/run-1/metrics');
        return q.body.points as { step: number; name: string }[];
      });
      expect(points.filter((p) => p.name === 'loss').map((p) => p.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(points.some((p) => p.name === 'final/mse')).toBe(true);
    } finally {
      fake.close();
    }
  });

  it('warns but finishes when the server is unreachable', async () => {
    const out = join(tempDir(), 'r');
    const r = await kiln(['regress', ...TINY, '--steps', '3', '--out', out, '--server', 'http://127.0.0.1:9', '--token', 't']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: eval server http://127.0.0.1:9');
    expect(countLines(join(out, 'metrics.jsonl'))).toBe(4);
  });
});

