/** API tests against the real server on loopback. */
import { readdirSync } from 'node:fs';
import { encodeSafetensors } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointcloudFixture } from './pointcloud-fixture.js';
import { type RunningServer, TOKEN, call, rawGet, sendEarlyAnswered, startServer, waitForJob } from './test-support.js';

let server: RunningServer;

beforeAll(async () => {
  // Many deliberate 401s below: a generous failed-auth limit (exposure.test.ts tests the limit).
  server = await startServer(['--max-upload-mb', '0.5', '--auth-failures', '1000']);
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
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } })).body).toEqual({ inserted: 3, replaced: 0, duplicate: false });
    await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 1, name: 'lr', value: 0.1 }] } });
    const t0 = Date.now();
    const { body } = await call(server, 'GET', `/api/runs/${id}/metrics`);
    expect(body.series.loss).toMatchObject({ steps: [1, 2, 3], values: [1, 0.5, 1 / 3], next: null, total: 3, downsampled: false });
    // points without a time of their own are stamped when they arrive
    for (const t of body.series.loss.times) expect(Math.abs(t - t0)).toBeLessThan(60_000);
    // and one with its time keeps it (the dashboard's wall-time axis)
    const timed = await newRun('timed');
    await call(server, 'POST', `/api/runs/${timed}/metrics`, { body: { points: [{ step: 1, name: 'acc', value: 0.5, time: 1.7e12 }] } });
    expect((await call(server, 'GET', `/api/runs/${timed}/metrics?name=acc`)).body.series.acc.times).toEqual([1.7e12]);
    expect((await call(server, 'POST', `/api/runs/${timed}/metrics`, { body: { points: [{ step: 1, name: 'acc', value: 0.5, time: -1 }] } })).status).toBe(400);
    expect(body.series.lr.values).toEqual([0.1]);
    // one value per step: writing a step again replaces it (a resumed run replays steps)
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 2, name: 'loss', value: 0.25 }] } })).body).toEqual({ inserted: 0, replaced: 1, duplicate: false });
    expect((await call(server, 'GET', `/api/runs/${id}/metrics?name=loss`)).body.series.loss.values).toEqual([1, 0.25, 1 / 3]);
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
    // the whole token or nothing: a longer or shorter one, another scheme, extra spaces
    for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer  ${TOKEN}`, `bearer ${TOKEN}`, `Basic ${TOKEN}`, TOKEN]) {
      const r = await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token: null, headers: { authorization: header } });
      expect(r.status, header).toBe(401);
    }
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

describe('series keys, tags and notes', () => {
  it('keeps one series per key of a metric (Chinese keys included) and reads each by name', async () => {
    const id = await newRun();
    const key = 'judge=region:浙江省';
    const points = [1, 2, 3].flatMap((step) => [
      { step, name: 'loss', key, value: step },
      { step, name: 'loss', key: 'judge=region:江苏省', value: 10 * step },
      { step, name: 'loss', value: 100 * step },
    ]);
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } })).body).toMatchObject({ inserted: 9, replaced: 0 });
    const run = (await call(server, 'GET', `/api/runs/${id}`)).body;
    expect(run.series).toEqual([
      { name: 'loss', metric: 'loss', points: 3, lastStep: 3 },
      { name: 'loss{judge=region:江苏省}', metric: 'loss', key: 'judge=region:江苏省', points: 3, lastStep: 3 },
      { name: `loss{${key}}`, metric: 'loss', key, points: 3, lastStep: 3 },
    ]);
    const one = (await call(server, 'GET', `/api/runs/${id}/metrics?name=${encodeURIComponent(`loss{${key}}`)}&maxPoints=4`)).body.series;
    expect(Object.keys(one)).toEqual([`loss{${key}}`]);
    expect(one[`loss{${key}}`].values).toEqual([1, 2, 3]);
    for (const bad of ['a{b', 'a}', 'x', '{', 'tab\there']) {
      const r = await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 1, name: 'loss', key: bad === 'x' ? '' : bad, value: 1 }] } });
      expect(r.status, bad).toBe(400);
      expect(r.body.message).toContain('body/points/0/key');
    }
    expect((await call(server, 'GET', `/api/runs/${id}/metrics?name=${encodeURIComponent('loss{}')}`)).status).toBe(400);
    expect((await call(server, 'GET', `/api/runs/${id}/metrics?name=${encodeURIComponent('lo ss{a}')}`)).status).toBe(400);
  });

  it('sets tags and a note with the token; runs list them with their config', async () => {
    const id = await newRun('annotated');
    expect((await call(server, 'PATCH', `/api/runs/${id}`, { body: { tags: ['csp'] }, token: null })).status).toBe(401);
    const tagged = await call(server, 'PATCH', `/api/runs/${id}`, { body: { tags: ['csp', '浙江'], note: 'lr 0.01,\nwarm-up 5 epochs' } });
    expect(tagged.status, tagged.text).toBe(200);
    expect(tagged.body).toMatchObject({ id, tags: ['csp', '浙江'], note: 'lr 0.01,\nwarm-up 5 epochs' });
    // a note alone leaves the tags
    expect((await call(server, 'PATCH', `/api/runs/${id}`, { body: { note: 'second thoughts' } })).body.tags).toEqual(['csp', '浙江']);
    const listed = (await call(server, 'GET', '/api/runs')).body.runs.find((r: { id: string }) => r.id === id);
    expect(listed).toMatchObject({ tags: ['csp', '浙江'], note: 'second thoughts', config: { steps: 3 } });
    expect((await call(server, 'GET', `/api/runs/${id}`)).body).toMatchObject({ tags: ['csp', '浙江'], note: 'second thoughts' });
    const refusals: [unknown, string][] = [
      [{}, 'must NOT have fewer than 1 properties'],
      [{ tags: ['a', 'a'] }, 'body/tags must NOT have duplicate items'],
      [{ tags: ['a,b'] }, 'body/tags/0 must match pattern'],
      [{ tags: [''] }, 'body/tags/0 must NOT have fewer than 1 characters'],
      [{ tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 'body/tags must NOT have more than 32 items'],
      [{ note: 'bell\u0007' }, 'body/note must match pattern'],
      [{ name: 'renamed' }, 'must NOT have additional properties'],
    ];
    for (const [body, message] of refusals) {
      const r = await call(server, 'PATCH', `/api/runs/${id}`, { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message).toContain(message);
    }
    expect((await call(server, 'PATCH', '/api/runs/run-nope', { body: { note: 'x' } })).status).toBe(404);
  });
});

describe('hostile bodies and retries', () => {
  it('answers JSON nested 5,000 deep with 400, not 500', async () => {
    const deep = `{"name":"deep","config":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const r = await call(server, 'POST', '/api/runs', { body: deep });
    expect(r.status).toBe(400);
    expect(r.body.message).toContain('nests deeper than 64 levels');
    const arrays = `{"points":${'['.repeat(6000)}${']'.repeat(6000)}}`;
    expect((await call(server, 'POST', `/api/runs/${await newRun()}/metrics`, { body: arrays })).status).toBe(400);
    expect((await call(server, 'GET', '/api/health')).status).toBe(200);
  });

  it('refuses steps beyond 2^53 - 1 instead of rounding them', async () => {
    const id = await newRun();
    for (const step of ['1e20', '9007199254740993', '9007199254740992']) {
      const r = await call(server, 'POST', `/api/runs/${id}/metrics`, { body: `{"points":[{"step":${step},"name":"loss","value":1}]}` });
      expect(r.status, step).toBe(400);
      expect(r.body.message, step).toContain('body/points/0/step must be <= 9007199254740991');
    }
    const ok = await call(server, 'POST', `/api/runs/${id}/metrics`, { body: '{"points":[{"step":9007199254740991,"name":"loss","value":1}]}' });
    expect(ok.status).toBe(200);
    expect((await call(server, 'GET', `/api/runs/${id}/metrics`)).body.series.loss.steps).toEqual([Number.MAX_SAFE_INTEGER]);
  });

  it('stores a retried batch once (same batchId), and a retried run or result once (same requestId)', async () => {
    const id = await newRun();
    const batch = { batchId: 'sink-1:0', points: [{ step: 1, name: 'loss', value: 1 }, { step: 2, name: 'loss', value: 2 }] };
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: batch })).body).toEqual({ inserted: 2, replaced: 0, duplicate: false });
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: batch })).body).toEqual({ inserted: 0, replaced: 0, duplicate: true });
    const changed = { ...batch, points: [{ step: 3, name: 'loss', value: 3 }] };
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: changed })).body.duplicate).toBe(true);
    expect((await call(server, 'GET', `/api/runs/${id}`)).body.metricCount).toBe(2);
    expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { ...batch, batchId: 'sink-1:1' } })).body).toEqual({ inserted: 0, replaced: 2, duplicate: false });
    // batch ids belong to their run
    const other = await newRun();
    expect((await call(server, 'POST', `/api/runs/${other}/metrics`, { body: batch })).body.inserted).toBe(2);

    const first = await call(server, 'POST', '/api/runs', { body: { name: 'retried', requestId: 'create-42' } });
    const again = await call(server, 'POST', '/api/runs', { body: { name: 'retried', requestId: 'create-42' } });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body.id).toBe(first.body.id);
    const result = { requestId: 'result-1', miou: 0.5, classes: [{ name: 'a', iou: 0.5 }] };
    expect((await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: result })).status).toBe(201);
    expect((await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: result })).status).toBe(200);
    expect((await call(server, 'GET', `/api/runs/${id}/results`)).body.results).toHaveLength(1);
    expect((await call(server, 'POST', '/api/runs', { body: { name: 'x', requestId: 'bad id!' } })).status).toBe(400);
  });

  it('refuses config keys that name built-in object properties, at any depth', async () => {
    for (const key of ['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'valueOf', 'prototype']) {
      const r = await call(server, 'POST', '/api/runs', { body: `{"name":"x","config":{"model":{"${key}":{"polluted":1}}}}` });
      expect(r.status, key).toBe(400);
      expect(r.body.message, key).toContain(`body/config/model/${key}: the key '${key}' is not allowed`);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const fine = await call(server, 'POST', '/api/runs', { body: { name: 'x', config: { toStringy: 1, proto: 2 } } });
    expect(fine.status).toBe(201);
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
    // IoU per class is a fraction too: 1.5 would be stored and drawn past the chart's end
    for (const iou of [1.5, 1.0000001, -0.1]) {
      const perClass = await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { miou: 0.5, classes: [{ name: 'a', iou: 0.5 }, { name: 'b', iou }] } });
      expect(perClass.status, String(iou)).toBe(400);
      expect(perClass.body.message).toMatch(/body\/classes\/1\/iou must be [<>]= [01]/);
    }
    expect((await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { miou: 1, classes: [{ name: 'a', iou: 1 }, { name: 'b', iou: null }] } })).status).toBe(201);
    // LInCo: intervals the right way up, no keys beyond the schema's
    const upsideDown = await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: { overall: { value: 0.2, lo: 0.3, hi: 0.1 }, groups: [{ group: 'a', value: 1 }] } });
    expect(upsideDown.status).toBe(400);
    expect(upsideDown.body.message).toContain('body/overall: lo 0.3 is greater than hi 0.1');
    const groupUpsideDown = await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: { overall: { value: 0.2, lo: 0.1, hi: 0.3 }, groups: [{ group: 'a', value: 1, lo: 2, hi: 0 }] } });
    expect(groupUpsideDown.body.message).toContain('body/groups/0: lo 2 is greater than hi 0');
    const baselineUpsideDown = await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: { overall: { value: 0.2, lo: 0.1, hi: 0.3 }, baseline: { value: 0, lo: 1, hi: -1 }, groups: [{ group: 'a', value: 1 }] } });
    expect(baselineUpsideDown.body.message).toContain('body/baseline: lo 1 is greater than hi -1');
    const extraKey = await call(server, 'POST', `/api/runs/${id}/results/linco`, { body: { overall: { value: 0.2, lo: 0.1, hi: 0.3, median: 0.2 }, groups: [{ group: 'a', value: 1 }] } });
    expect(extraKey.status).toBe(400);
    expect(extraKey.body.message).toContain('must NOT have additional properties');
    expect((await call(server, 'GET', `/api/runs/${id}/results`)).body.results.filter((r: { kind: string }) => r.kind === 'linco')).toHaveLength(1);
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
    expect(index.text).toContain('/app.js');
    expect((await call(server, 'GET', '/cloud-view.js')).text).toContain("from '/vendor/three/three.module.js'");
    const three = await fetch(`${server.url}/vendor/three/three.module.js`);
    expect(three.status).toBe(200);
    expect(await three.text()).toContain('Three.js Authors');
    for (const file of ['/app.js', '/api.js', '/series-cache.js', '/charts.js', '/cloud-view.js', '/style.css']) expect((await fetch(`${server.url}${file}`)).status, file).toBe(200);
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
    const fixture = await pointcloudFixture();
    const id = await newRun('point-cloud checkpoint');
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/finetune.safetensors`, { raw: fixture.finetune })).status).toBe(201);
    expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/val.safetensors`, { raw: fixture.dataset })).status).toBe(201);
    const submitted = (await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'pointcloud', checkpoint: 'finetune.safetensors', dataset: 'val.safetensors' } })).body;
    const job = await waitForJob(server, submitted.id);
    expect(job.status, job.message).toBe('done');
    expect(job.result.miou).toBeCloseTo(fixture.expected.mIoU, 10);
    expect(job.result.classes.map((c: { iou: number | null }) => c.iou ?? Number.NaN)).toEqual(fixture.expected.iou);
    expect(job.result.classes[0].name).toBe('ceiling');
    const view = (await call(server, 'GET', `/api/runs/${id}/artifacts/finetune.points.json`)).body;
    expect(view.labels.length).toBe(fixture.firstScene);
  });
});
