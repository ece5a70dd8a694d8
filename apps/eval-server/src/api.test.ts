/** API tests against the real server on loopback. */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, call, rawGet, sendEarlyAnswered, startServer } from './test-support.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer(['--max-upload-mb', '0.5']);
});
afterAll(async () => {
  await server?.stop();
});

async function newRun(name = 'test run'): Promise<string> {
  const r = await call(server, 'POST', '/api/runs', { body: { name, kind: 'regress', config: { steps: 3 } } });
  expect(r.status).toBe(201);
  return r.body.id;
}

describe('runs and metrics', () => {
  it('creates a run, appends metrics in batches and reads them back in step order', async () => {
    const id = await newRun();
    const points = [3, 1, 2].map((step) => ({ step, name: 'loss', value: 1 / step }));
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } })).body).toEqual({ inserted: 3 });
    await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 1, name: 'lr', value: 0.1 }] } });
    const { body } = await call(server, 'GET', `/api/runs/${id}/metrics`);
    expect(body.series.loss).toEqual({ steps: [1, 2, 3], values: [1, 0.5, 1 / 3] });
    expect(body.series.lr.values).toEqual([0.1]);
    const run = (await call(server, 'GET', `/api/runs/${id}`)).body;
    expect(run).toMatchObject({ id, name: 'test run', kind: 'regress', config: { steps: 3 }, metricCount: 4 });
    const list = (await call(server, 'GET', '/api/runs')).body.runs;
    expect(list.find((r: { id: string }) => r.id === id)).toMatchObject({ metricCount: 4, lastStep: 3 });
  });

  it('refuses writes without the right token (401) but serves reads', async () => {
    const none = await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token: null });
    expect(none.status).toBe(401);
    expect(none.body.message).toContain('Authorization: Bearer');
    expect((await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token: 'wrong' })).status).toBe(401);
    const id = await newRun();
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 0, name: 'a', value: 1 }] }, token: null })).status).toBe(401);
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/a.bin`, { raw: new Uint8Array(4), token: null })).status).toBe(401);
    expect((await call(server, 'POST', '/api/jobs', { body: {}, token: null })).status).toBe(401);
    expect((await call(server, 'GET', '/api/runs', { token: null })).status).toBe(200);
  });

  it('answers bad bodies with 400 naming the field', async () => {
    const id = await newRun();
    const cases: [unknown, string][] = [
      [{ points: [{ step: 1, name: 'loss', value: 'high' }] }, 'body/points/0/value must be number'],
      [{ points: [{ step: -1, name: 'loss', value: 1 }] }, 'body/points/0/step must be >= 0'],
      [{ points: [{ step: 1.5, name: 'loss', value: 1 }] }, 'body/points/0/step must be integer'],
      [{ points: [] }, 'body/points must NOT have fewer than 1 items'],
      [{ points: [{ step: 1, name: 'bad name!', value: 1 }] }, 'body/points/0/name must match pattern'],
      [{ pts: [] }, "body must have required property 'points'"],
    ];
    for (const [body, message] of cases) {
      const r = await call(server, 'POST', `/api/runs/${id}/metrics`, { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message).toContain(message);
    }
    const notJson = await call(server, 'POST', `/api/runs/${id}/metrics`, { body: '{"points": [', contentType: 'application/json' });
    expect(notJson.status).toBe(400);
    expect((await call(server, 'POST', '/api/runs', { body: { name: '' } })).status).toBe(400);
    expect((await call(server, 'POST', '/api/runs', { body: { name: 'a', extra: 1 } })).body.message).toContain('must NOT have additional properties');
    expect((await call(server, 'POST', '/api/runs/run-missing/metrics', { body: { points: [{ step: 1, name: 'a', value: 1 }] } })).status).toBe(404);
    // no rows from the refused batches
    expect((await call(server, 'GET', `/api/runs/${id}`)).body.metricCount).toBe(0);
  });
});

describe('evaluation results', () => {
  it('stores point-cloud, MoE and LInCo results and validates them', async () => {
    const id = await newRun();
    const pc = { miou: 0.5, classes: [{ name: 'wall', iou: 0.7 }, { name: 'chair', iou: 0.3 }] };
    expect((await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: pc })).status).toBe(201);
    const moe = { layers: [{ layer: 0, load: [0.2, 0.3, 0.5] }, { layer: 1, load: [0.4, 0.4, 0.2] }] };
    expect((await call(server, 'POST', `/api/runs/${id}/results/moe`, { body: moe })).status).toBe(201);
    const linco = { confidence: 0.95, overall: { value: 0.2, lo: 0.1, hi: 0.3 }, groups: [{ group: 'civil', value: 0.25, lo: 0.1, hi: 0.4, n: 40 }] };
    expect((await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: linco })).status).toBe(201);
    const { results } = (await call(server, 'GET', `/api/runs/${id}/results`)).body;
    expect(results.map((r: { kind: string }) => r.kind)).toEqual(['pointcloud', 'moe', 'linco']);
    expect(results[2].payload.groups[0]).toEqual(linco.groups[0]);

    const bad = await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { miou: 1.5, classes: [] } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('body/miou must be <= 1');
    expect((await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: { overall: { value: 1 }, groups: [] } })).status).toBe(400);
    expect((await call(server, 'POST', `/api/runs/${id}/results/other`, { body: {} })).status).toBe(404);
    const traversal = await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { ...pc, pointsArtifact: '../../kiln-eval.db' } });
    expect(traversal.status).toBe(400);
  });
});

describe('artifacts', () => {
  it('stores uploads atomically and serves them back', async () => {
    const id = await newRun();
    const bytes = new Uint8Array(1000).map((_, i) => i % 251);
    const put = await call(server, 'PUT', `/api/runs/${id}/artifacts/model.safetensors`, { raw: bytes });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ name: 'model.safetensors', size: 1000 });
    const res = await fetch(`${server.url}/api/runs/${id}/artifacts/model.safetensors`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect((await call(server, 'GET', `/api/runs/${id}/artifacts`)).body.artifacts).toHaveLength(1);
    expect((await call(server, 'GET', `/api/runs/${id}/artifacts/missing.bin`)).status).toBe(404);
    // no temporary files left beside the artifact
    expect(readdirSync(`${server.dataDir}/artifacts/${id}`)).toEqual(['model.safetensors']);
  });

  it('refuses oversized uploads with 413 and keeps nothing', async () => {
    const id = await newRun();
    const big = new Uint8Array(600 * 1024); // limit is 0.5 MiB in this server
    const r = await sendEarlyAnswered(server, 'PUT', `/api/runs/${id}/artifacts/big.bin`, big, 'application/octet-stream');
    expect(r.status).toBe(413);
    expect((await call(server, 'GET', `/api/runs/${id}/artifacts`)).body.artifacts).toEqual([]);
    const hugeBody = new TextEncoder().encode(JSON.stringify({ points: [{ step: 1, name: 'x'.repeat(5 * 1024 * 1024), value: 1 }] }));
    const hugeJson = await sendEarlyAnswered(server, 'POST', `/api/runs/${id}/metrics`, hugeBody, 'application/json');
    expect(hugeJson.status).toBe(413);
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/a.json`, { raw: new Uint8Array(2), contentType: 'text/plain' })).status).toBe(415);
  });

  it('serves nothing outside the data folder', async () => {
    const id = await newRun();
    for (const name of ['..%2F..%2Fkiln-eval.db', '..', '.hidden', '%2Fetc%2Fpasswd', 'a%00b', '..%5C..%5Cx']) {
      const put = await call(server, 'PUT', `/api/runs/${id}/artifacts/${name}`, { raw: new Uint8Array(2) });
      expect(put.status, name).toBeGreaterThanOrEqual(400);
      expect(put.status, name).toBeLessThan(500);
      const get = await rawGet(server, `/api/runs/${id}/artifacts/${name}`);
      expect(get.status, name).toBeGreaterThanOrEqual(400);
      expect(get.status, name).toBeLessThan(500);
      expect(get.text).not.toContain('SQLite');
    }
    for (const path of [
      '/../package.json',
      '/..%2fpackage.json',
      '/%2e%2e/%2e%2e/package.json',
      '/vendor/three/../../package.json',
      '/vendor/three/..%2f..%2fpackage.json',
      '/api/runs/..%2F..%2F/artifacts/kiln-eval.db',
    ]) {
      const r = await rawGet(server, path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      expect(r.text, path).not.toContain('"dependencies"');
    }
  });
});

describe('dashboard files', () => {
  it('serves the dashboard and three.js from node_modules', async () => {
    const index = await call(server, 'GET', '/');
    expect(index.status).toBe(200);
    expect(index.text).toContain('/vendor/three/three.module.js');
    const three = await fetch(`${server.url}/vendor/three/three.module.js`);
    expect(three.status).toBe(200);
    expect(await three.text()).toContain('Three.js Authors');
    for (const file of ['/app.js', '/charts.js', '/cloud-view.js', '/style.css']) expect((await fetch(`${server.url}${file}`)).status, file).toBe(200);
  });
});

describe('evaluation jobs', () => {
  it('scores predictions in a worker, reports progress and stores mIoU per class and the view', async () => {
    const id = await newRun('segmentation eval');
    const n = 400;
    const labels = new Int32Array(n).map((_, i) => i % 4);
    // class 3 always predicted as 2: IoU(0..1) = 1, IoU(2) = 1/2, IoU(3) = 0
    const predictions = new Int32Array(n).map((_, i) => (i % 4 === 3 ? 2 : i % 4));
    const points = new Float32Array(n * 3).map((_, i) => Math.sin(i));
    const dataset = encodeSafetensors(
      { labels: { dtype: 'I32', shape: [n], data: labels }, points: { dtype: 'F32', shape: [n, 3], data: points } },
      { classes: JSON.stringify(['floor', 'wall', 'table', 'chair']) },
    );
    const ckpt = encodeSafetensors({ predictions: { dtype: 'I32', shape: [n], data: predictions } });
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/data.safetensors`, { raw: dataset })).status).toBe(201);
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/pred.safetensors`, { raw: ckpt })).status).toBe(201);

    const missing = await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'segmentation', checkpoint: 'nope.safetensors', dataset: 'data.safetensors' } });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain("no artifact 'nope.safetensors'");
    expect((await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'segmentation', checkpoint: '../x', dataset: 'data.safetensors' } })).status).toBe(400);

    const submitted = await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'segmentation', checkpoint: 'pred.safetensors', dataset: 'data.safetensors' } });
    expect(submitted.status).toBe(202);
    let job = submitted.body;
    const seen = new Set<number>();
    for (let i = 0; i < 200 && job.status !== 'done' && job.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await call(server, 'GET', `/api/jobs/${job.id}`)).body;
      seen.add(job.progress);
    }
    expect(job.status, job.message).toBe('done');
    expect(job.progress).toBe(1);
    expect(job.result.miou).toBeCloseTo((1 + 1 + 0.5 + 0) / 4, 10);
    expect(job.result.classes.map((c: { iou: number }) => c.iou)).toEqual([1, 1, 0.5, 0]);
    const { results } = (await call(server, 'GET', `/api/runs/${id}/results`)).body;
    expect(results[0].payload).toMatchObject({ kind: 'pointcloud', pointsArtifact: 'pred.points.json' });
    const view = (await call(server, 'GET', `/api/runs/${id}/artifacts/pred.points.json`)).body;
    expect(view.labels).toHaveLength(n);
    expect(view.classes).toEqual(['floor', 'wall', 'table', 'chair']);

    // a broken checkpoint fails the job with a message, not the server
    await call(server, 'PUT', `/api/runs/${id}/artifacts/broken.safetensors`, { raw: new Uint8Array([1, 2, 3]) });
    let failed = (await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'segmentation', checkpoint: 'broken.safetensors', dataset: 'data.safetensors' } })).body;
    for (let i = 0; i < 200 && failed.status !== 'failed' && failed.status !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      failed = (await call(server, 'GET', `/api/jobs/${failed.id}`)).body;
    }
    expect(failed.status).toBe('failed');
    expect(failed.message).toMatch(/checkpoint/);
    expect((await call(server, 'GET', '/api/health')).status).toBe(200);
  });

  it('evaluates a fine-tuned point-cloud checkpoint on uploaded scenes, matching the library', async () => {
    const pc = await import('@kiln/pointcloud-ssl');
    const { initBackend } = await import('@kiln/tensor');
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
    const dir = mkdtempSync(join(tmpdir(), 'kiln-pc-'));
    const tuned = await pc.finetune('tiny', { overrides: { finetune: { steps: 1 } } });
    const ckptPath = join(dir, 'finetune.safetensors');
    await pc.saveCheckpoint(ckptPath, [tuned.backbone.params, tuned.head], tuned.config, 'finetune');
    const val = pc.syntheticSplits(tuned.config).val;
    const all = pc.concatScenes(val);
    const dataset = encodeSafetensors({
      coord: { dtype: 'F32', shape: [all.coord.length / 3, 3], data: all.coord },
      color: { dtype: 'F32', shape: [all.coord.length / 3, 3], data: all.color! },
      label: { dtype: 'I32', shape: [all.label!.length], data: all.label! },
      offset: { dtype: 'I32', shape: [all.offset.length], data: all.offset },
    });
    const expected = (await pc.evaluate(tuned.config, { backbone: tuned.backbone, head: tuned.head, data: { train: [], val } })).single;

    const id = await newRun('point-cloud checkpoint');
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/finetune.safetensors`, { raw: readFileSync(ckptPath) })).status).toBe(201);
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/val.safetensors`, { raw: dataset })).status).toBe(201);
    let job = (await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'pointcloud', checkpoint: 'finetune.safetensors', dataset: 'val.safetensors' } })).body;
    const progress: number[] = [];
    for (let i = 0; i < 600 && job.status !== 'done' && job.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await call(server, 'GET', `/api/jobs/${job.id}`)).body;
      progress.push(job.progress);
    }
    expect(job.status, job.message).toBe('done');
    expect(job.result.miou).toBeCloseTo(expected.mIoU, 10);
    expect(job.result.classes.map((c: { iou: number | null }) => c.iou ?? Number.NaN)).toEqual(expected.iou);
    expect(job.result.classes[0].name).toBe('ceiling');
    const view = (await call(server, 'GET', `/api/runs/${id}/artifacts/finetune.points.json`)).body;
    expect(view.labels.length).toBe(val[0]!.label!.length);
  });
});
