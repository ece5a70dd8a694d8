/**
 * Evaluation jobs under hostile and faulty conditions, against the real server: each bad job
 * must end as `failed` with a reason that names the problem, and the server must keep
 * serving (health, reads, and a good job afterwards).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { encodeSafetensors, decodeSafetensors } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PointcloudFixture, pointcloudFixture } from './pointcloud-fixture.js';
import { type RunningServer, call, startServer, waitForJob } from './test-support.js';

/** A checkpoint's config, typed as loosely as the tests break it. */
type Config = { numClasses: number; model: { channels: number[]; depths: number[]; mlpRatio: number; mamba: { dState: number } } };

let fixture: PointcloudFixture;
const servers: RunningServer[] = [];

beforeAll(async () => {
  fixture = await pointcloudFixture();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function serve(args: string[] = []): Promise<RunningServer> {
  const s = await startServer(args);
  servers.push(s);
  return s;
}

async function upload(server: RunningServer, files: Record<string, Uint8Array>): Promise<string> {
  const id = (await call(server, 'POST', '/api/runs', { body: { name: 'jobs' } })).body.id as string;
  for (const [name, bytes] of Object.entries(files)) {
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/${name}`, { raw: bytes })).status).toBe(201);
  }
  return id;
}

async function submit(server: RunningServer, runId: string, kind: 'pointcloud' | 'segmentation', checkpoint: string, dataset: string) {
  const r = await call(server, 'POST', '/api/jobs', { body: { runId, kind, checkpoint, dataset } });
  expect(r.status, r.text).toBe(202);
  return r.body.id as string;
}

async function expectServing(server: RunningServer): Promise<void> {
  expect(server.child.exitCode).toBeNull();
  expect(server.child.signalCode).toBeNull();
  expect((await call(server, 'GET', '/api/health')).body).toMatchObject({ ok: true });
  expect((await call(server, 'GET', '/api/runs')).status).toBe(200);
}

/** The finetune checkpoint with its metadata config changed. */
function withConfig(mutate: (config: Config) => void): Uint8Array {
  const file = decodeSafetensors(fixture.finetune);
  const config = JSON.parse(file.metadata.config!) as Config;
  mutate(config);
  return encodeSafetensors(file.tensors, { ...file.metadata, config: JSON.stringify(config) });
}

describe('bad pointcloud jobs fail with their reason and the server keeps serving', () => {
  it('a pre-training checkpoint, a truncated one, an oversized config, a label out of range', async () => {
    const server = await serve();
    const dataset = decodeSafetensors(fixture.dataset);
    const label = Int32Array.from(dataset.tensors.label!.data as Int32Array);
    label[7] = 20000;
    const badLabels = encodeSafetensors({ ...dataset.tensors, label: { dtype: 'I32', shape: [label.length], data: label } });
    const runId = await upload(server, {
      'finetune.safetensors': fixture.finetune,
      'pretrain.safetensors': fixture.pretrain,
      'truncated.safetensors': fixture.finetune.subarray(0, Math.floor(fixture.finetune.length * 0.7)),
      'huge.safetensors': withConfig((c) => {
        c.model.channels = [100_000, 200_000];
      }),
      'val.safetensors': fixture.dataset,
      'bad-labels.safetensors': badLabels,
    });
    const cases: [string, string, RegExp][] = [
      ['pretrain.safetensors', 'val.safetensors', /pre-training checkpoint .*a fine-tuned one \(finetune\.safetensors\) is needed/],
      ['truncated.safetensors', 'val.safetensors', /the checkpoint: .*(truncated|out of range)/],
      ['huge.safetensors', 'val.safetensors', /config describes a model with more parameters than the checkpoint's \d+ values/],
      ['finetune.safetensors', 'bad-labels.safetensors', /data set tensor 'label': point 7 has label 20000, outside the 13 classes 0\.\.12 \(use -1 for points to ignore\)/],
    ];
    for (const [checkpoint, data, reason] of cases) {
      const started = Date.now();
      const job = await waitForJob(server, await submit(server, runId, 'pointcloud', checkpoint, data));
      expect(job.status, checkpoint).toBe('failed');
      expect(job.message, checkpoint).toMatch(reason);
      expect(job.message).not.toContain(server.dataDir); // names the file's role, not the server's path
      // refused before anything large: seconds, not the minutes a 200,000-channel model would take
      expect(Date.now() - started, checkpoint).toBeLessThan(30_000);
      await expectServing(server);
    }
    // and a good job afterwards still runs and matches the library
    const good = await waitForJob(server, await submit(server, runId, 'pointcloud', 'finetune.safetensors', 'val.safetensors'));
    expect(good.status, good.message).toBe('done');
    expect(good.result.miou).toBeCloseTo(fixture.expected.mIoU, 10);
  });

  it('a job over its memory limit is killed and fails saying so', async () => {
    // One scene of 200,000 points: valid, but the tiny model's activations need far more than 200 MB.
    const n = 200_000;
    const big = encodeSafetensors({
      coord: { dtype: 'F32', shape: [n, 3], data: Float32Array.from({ length: 3 * n }, (_, i) => ((i * 2654435761) % 1000) / 100) },
      color: { dtype: 'F32', shape: [n, 3], data: new Float32Array(3 * n).fill(0.5) },
      label: { dtype: 'I32', shape: [n], data: new Int32Array(n) },
      offset: { dtype: 'I32', shape: [1], data: Int32Array.of(n) },
    });
    const server = await serve(['--job-memory-mb', '200']);
    const runId = await upload(server, { 'finetune.safetensors': fixture.finetune, 'big.safetensors': big });
    const job = await waitForJob(server, await submit(server, runId, 'pointcloud', 'finetune.safetensors', 'big.safetensors'));
    expect(job.status).toBe('failed');
    expect(job.message).toMatch(/^stopped at \d+ MB of memory, over the job limit of 200 MB$|^ran out of memory \(JavaScript heap limit 200 MB\)$/);
    await expectServing(server);
  });

  it('a job over its time limit is killed and fails saying so', async () => {
    const server = await serve(['--job-timeout-s', '0.3']);
    const runId = await upload(server, { 'finetune.safetensors': fixture.finetune, 'val.safetensors': fixture.dataset });
    const job = await waitForJob(server, await submit(server, runId, 'pointcloud', 'finetune.safetensors', 'val.safetensors'));
    expect(job.status).toBe('failed');
    expect(job.message).toBe('stopped after 0.3 s, the job time limit');
    await expectServing(server);
  });

  it.runIf(process.platform === 'linux')('a job whose process dies of a native fault (SIGSEGV) fails with the signal', async () => {
    const server = await serve();
    const runId = await upload(server, { 'finetune.safetensors': fixture.finetune, 'val.safetensors': fixture.dataset });
    const id = await submit(server, runId, 'pointcloud', 'finetune.safetensors', 'val.safetensors');
    // The job's process is the server's only child process.
    const childOf = (ppid: number) =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(ppid);
          } catch {
            return false;
          }
        });
    let pid: string | undefined;
    for (let i = 0; i < 200 && !pid; i++) {
      pid = childOf(server.child.pid!);
      if (!pid) await new Promise((r) => setTimeout(r, 25));
    }
    expect(pid).toBeDefined();
    process.kill(Number(pid), 'SIGSEGV');
    const job = await waitForJob(server, id);
    expect(job.status).toBe('failed');
    expect(job.message).toMatch(/^the evaluation process crashed \(SIGSEGV\)/);
    await expectServing(server);
  });
});

describe('segmentation jobs check labels against the classes', () => {
  it('an out-of-range label is an error, not a 20,001-class result', async () => {
    const server = await serve();
    const n = 8;
    const labels = Int32Array.of(0, 1, 2, 3, -1, 1, 2, 20000);
    const predictions = Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3);
    const named = encodeSafetensors({ labels: { dtype: 'I32', shape: [n], data: labels } }, { classes: JSON.stringify(['a', 'b', 'c', 'd']) });
    const ok = encodeSafetensors({ labels: { dtype: 'I32', shape: [n], data: labels.map((l) => (l === 20000 ? 3 : l)) } }, { classes: JSON.stringify(['a', 'b', 'c', 'd']) });
    const pred = encodeSafetensors({ predictions: { dtype: 'I32', shape: [n], data: predictions } });
    const runId = await upload(server, { 'named.st': named, 'ok.st': ok, 'pred.st': pred });
    const failed = await waitForJob(server, await submit(server, runId, 'segmentation', 'pred.st', 'named.st'));
    expect(failed.status).toBe('failed');
    expect(failed.message).toBe("data set tensor 'labels': point 7 has label 20000, outside the 4 classes 0..3 (use -1 for points to ignore)");
    // −1 is ignored: classes 0..3 each predicted right
    const done = await waitForJob(server, await submit(server, runId, 'segmentation', 'pred.st', 'ok.st'));
    expect(done.status, done.message).toBe('done');
    expect(done.result.classes.map((c: { iou: number }) => c.iou)).toEqual([1, 1, 1, 1]);
    expect(done.result.classes.map((c: { support: number }) => c.support)).toEqual([1, 2, 2, 2]);
    await expectServing(server);
  });
});
