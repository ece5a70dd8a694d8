/**
 * Who may write and what may be stored, checked in process (Fastify's inject, no sockets):
 * the bearer-token check on every write, and each request schema at its limits — the
 * largest value it must accept and the first one past it, every required field, and the
 * types and ranges of every field. A body the schema refuses is a 400 naming the field.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type EvalServer } from './server.js';

const TOKEN = 'schema-test-token-42';
let server: EvalServer;
let runId: string;

beforeAll(async () => {
  server = await createServer({ dataDir: mkdtempSync(join(tmpdir(), 'kiln-eval-schemas-')), token: TOKEN });
  const r = await post('/api/runs', { name: 'r' });
  runId = JSON.parse(r.body).id;
});

afterAll(async () => {
  await server.app.close();
});

/** A write with the given Authorization header (null: none). */
async function post(url: string, body: unknown, auth: string | null = `Bearer ${TOKEN}`, method: 'POST' | 'PUT' = 'POST') {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  if (Buffer.isBuffer(body)) headers['content-type'] = 'application/octet-stream';
  return server.app.inject({ method, url, headers, payload: body as object });
}

/** Posts `body` and expects the schema to accept it (any status but 400 / 401). */
async function accepted(url: string, body: unknown): Promise<void> {
  const r = await post(url, body);
  expect([400, 401], `${url} ${JSON.stringify(body).slice(0, 200)} → ${r.statusCode} ${r.body}`).not.toContain(r.statusCode);
}

/** Posts `body` and expects a 400 whose message names `field`. */
async function refused(url: string, body: unknown, field: RegExp | string): Promise<void> {
  const r = await post(url, body);
  expect(r.statusCode, `${url} ${JSON.stringify(body).slice(0, 200)} → ${r.body}`).toBe(400);
  const message = JSON.parse(r.body).message as string;
  if (typeof field === 'string') expect(message).toContain(field);
  else expect(message).toMatch(field);
}

describe('the bearer token', () => {
  it('is required on every write, exactly', async () => {
    const wrong = [null, '', 'Bearer', 'Bearer ', `bearer ${TOKEN}`, `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN.slice(0, -1)}X`, `Bearer  ${TOKEN}`, `Bearer ${TOKEN} `, `x Bearer ${TOKEN}`, TOKEN];
    for (const auth of wrong) {
      const r = await post('/api/runs', { name: 'nope' }, auth);
      expect(r.statusCode, `Authorization: ${JSON.stringify(auth)}`).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(r.body)).toEqual({ statusCode: 401, error: 'Unauthorized', message: 'writes need the header Authorization: Bearer <token>' });
    }
    const put = await post(`/api/runs/${runId}/artifacts/a.bin`, Buffer.from([1]), 'Bearer wrong', 'PUT');
    expect(put.statusCode).toBe(401);
    expect((await post('/api/runs', { name: 'yes' })).statusCode).toBe(201);
  });

  it('is not needed to read', async () => {
    for (const url of ['/api/health', '/api/runs', `/api/runs/${runId}`, `/api/runs/${runId}/metrics`]) {
      expect((await server.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
    expect((await server.app.inject({ method: 'HEAD', url: '/api/health' })).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'OPTIONS', url: '/api/health' })).statusCode).not.toBe(401);
  });
});

describe('request schemas', () => {
  it('runs: a name of 1 to 200 characters, a kind of at most 100, a config object, nothing else', async () => {
    const r = await post('/api/runs', { name: 'x'.repeat(200) });
    expect(r.statusCode).toBe(201);
    const run = JSON.parse(r.body);
    expect(run.kind).toBe('generic');
    expect(run.config).toEqual({});
    await accepted('/api/runs', { name: 'n', kind: 'k'.repeat(100), config: { a: 1 } });
    await refused('/api/runs', {}, "body must have required property 'name'");
    await refused('/api/runs', { name: '' }, 'body/name must NOT have fewer than 1 characters');
    await refused('/api/runs', { name: 'x'.repeat(201) }, 'body/name must NOT have more than 200 characters');
    await refused('/api/runs', { name: 3 }, 'body/name must be string');
    await refused('/api/runs', { name: 'n', kind: '' }, 'body/kind must NOT have fewer than 1 characters');
    await refused('/api/runs', { name: 'n', kind: 'k'.repeat(101) }, 'body/kind must NOT have more than 100 characters');
    await refused('/api/runs', { name: 'n', config: [1] }, 'body/config must be object');
    await refused('/api/runs', { name: 'n', owner: 'me' }, 'body must NOT have additional properties');
  });

  it('ids: a letter or digit, then up to 63 letters, digits, _ or -', async () => {
    const get = async (id: string) => (await server.app.inject({ method: 'GET', url: `/api/runs/${id}` })).statusCode;
    expect(await get(`a${'b_-'.repeat(21)}`)).toBe(404); // 64 characters: valid, but no such run
    expect(await get('9')).toBe(404);
    expect(await get(`a${'b'.repeat(64)}`)).toBe(400);
    expect(await get('-a')).toBe(400);
    expect(await get('_a')).toBe(400);
    expect(await get('a.b')).toBe(400);
    const r = await server.app.inject({ method: 'GET', url: '/api/runs/a%20b' });
    expect(JSON.parse(r.body).message).toMatch(/^params\/id must match pattern/);
  });

  it('metrics: 1 to 10000 points of integer step >= 0, a name of allowed characters, a number value', async () => {
    const url = `/api/runs/${runId}/metrics`;
    const point = { step: 0, name: 'loss/train:a.b-c_1', value: 1.5 };
    await accepted(url, { points: [point] });
    await accepted(url, { points: Array.from({ length: 10_000 }, (_, i) => ({ step: i, name: 'n', value: i })) });
    await refused(url, { points: Array.from({ length: 10_001 }, (_, i) => ({ step: i, name: 'n', value: i })) }, 'body/points must NOT have more than 10000 items');
    await refused(url, { points: [] }, 'body/points must NOT have fewer than 1 items');
    await refused(url, {}, "body must have required property 'points'");
    await refused(url, { points: [point], extra: 1 }, 'body must NOT have additional properties');
    await refused(url, { points: [{ ...point, step: -1 }] }, 'body/points/0/step must be >= 0');
    await refused(url, { points: [{ ...point, step: 1.5 }] }, 'body/points/0/step must be integer');
    await refused(url, { points: [point, { ...point, name: '' }] }, 'body/points/1/name must NOT have fewer than 1 characters');
    await accepted(url, { points: [{ ...point, name: 'n'.repeat(100) }] });
    await refused(url, { points: [{ ...point, name: 'n'.repeat(101) }] }, 'body/points/0/name must NOT have more than 100 characters');
    await refused(url, { points: [{ ...point, name: 'a b' }] }, 'body/points/0/name must match pattern');
    await refused(url, { points: [{ ...point, value: '1' }] }, 'body/points/0/value must be number');
    await refused(url, { points: [{ step: 1, name: 'n' }] }, "body/points/0 must have required property 'value'");
    await refused(url, { points: [{ ...point, unit: 's' }] }, 'body/points/0 must NOT have additional properties');
  });

  it('point-cloud results: mIoU, accuracy and every IoU in [0, 1], 1 to 1000 classes', async () => {
    const url = `/api/runs/${runId}/results/pointcloud`;
    const ok = { miou: 0.5, classes: [{ name: 'wall', iou: 0.5 }] };
    await accepted(url, ok);
    await accepted(url, { kind: 'pointcloud', split: 's'.repeat(100), miou: 1, accuracy: 0, classes: [{ name: 'a', iou: null, support: 0 }, { name: 'b', iou: 1 }] });
    await accepted(url, { miou: 0, classes: Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, iou: 0 })) });
    await refused(url, { ...ok, miou: 1.5 }, 'body/miou must be <= 1');
    await refused(url, { ...ok, miou: -0.1 }, 'body/miou must be >= 0');
    await refused(url, { ...ok, accuracy: 1.01 }, 'body/accuracy must be <= 1');
    await refused(url, { ...ok, accuracy: -1 }, 'body/accuracy must be >= 0');
    await refused(url, { ...ok, classes: [{ name: 'a', iou: 1.5 }] }, 'body/classes/0/iou must be <= 1');
    await refused(url, { ...ok, classes: [{ name: 'a', iou: -0.5 }] }, 'body/classes/0/iou must be >= 0');
    await refused(url, { ...ok, classes: [{ name: 'a', iou: '1' }] }, 'body/classes/0/iou must be number,null');
    await refused(url, { ...ok, classes: [{ name: 'a', iou: 0.5, support: -1 }] }, 'body/classes/0/support must be >= 0');
    await refused(url, { ...ok, classes: [{ name: 'a', iou: 0.5, support: 0.5 }] }, 'body/classes/0/support must be integer');
    await refused(url, { ...ok, classes: [{ name: '', iou: 0.5 }] }, 'body/classes/0/name must NOT have fewer than 1 characters');
    await refused(url, { ...ok, classes: [{ iou: 0.5 }] }, "body/classes/0 must have required property 'name'");
    await refused(url, { ...ok, classes: [{ name: 'a' }] }, "body/classes/0 must have required property 'iou'");
    await refused(url, { ...ok, classes: [{ name: 'a', iou: 0.5, color: 'red' }] }, 'body/classes/0 must NOT have additional properties');
    await refused(url, { ...ok, classes: [] }, 'body/classes must NOT have fewer than 1 items');
    await refused(url, { ...ok, classes: Array.from({ length: 1001 }, (_, i) => ({ name: `c${i}`, iou: 0 })) }, 'body/classes must NOT have more than 1000 items');
    await refused(url, { classes: ok.classes }, "body must have required property 'miou'");
    await refused(url, { miou: 0.5 }, "body must have required property 'classes'");
    await refused(url, { ...ok, kind: 'moe' }, 'body/kind must be equal to constant');
    await refused(url, { ...ok, split: 's'.repeat(101) }, 'body/split must NOT have more than 100 characters');
    await refused(url, { ...ok, pointsArtifact: 'p'.repeat(129) }, 'body/pointsArtifact must NOT have more than 128 characters');
    await refused(url, { ...ok, note: 'x' }, 'body must NOT have additional properties');
  });

  it('MoE results: 1 to 1000 layers, each an integer layer >= 0 and 1 to 4096 loads >= 0', async () => {
    const url = `/api/runs/${runId}/results/moe`;
    const layer = { layer: 0, load: [0.25, 0.75] };
    await accepted(url, { kind: 'moe', step: 0, layers: [layer] });
    await accepted(url, { layers: [{ layer: 3, load: new Array(4096).fill(0) }] });
    await accepted(url, { layers: Array.from({ length: 1000 }, (_, i) => ({ layer: i, load: [1] })) });
    await refused(url, { layers: Array.from({ length: 1001 }, (_, i) => ({ layer: i, load: [1] })) }, 'body/layers must NOT have more than 1000 items');
    await refused(url, { layers: [] }, 'body/layers must NOT have fewer than 1 items');
    await refused(url, {}, "body must have required property 'layers'");
    await refused(url, { layers: [{ layer: -1, load: [1] }] }, 'body/layers/0/layer must be >= 0');
    await refused(url, { layers: [{ layer: 0.5, load: [1] }] }, 'body/layers/0/layer must be integer');
    await refused(url, { layers: [{ layer: 0, load: [] }] }, 'body/layers/0/load must NOT have fewer than 1 items');
    await refused(url, { layers: [{ layer: 0, load: new Array(4097).fill(0) }] }, 'body/layers/0/load must NOT have more than 4096 items');
    await refused(url, { layers: [{ layer: 0, load: [0.5, -0.1] }] }, 'body/layers/0/load/1 must be >= 0');
    await refused(url, { layers: [{ load: [1] }] }, "body/layers/0 must have required property 'layer'");
    await refused(url, { layers: [{ layer: 0 }] }, "body/layers/0 must have required property 'load'");
    await refused(url, { layers: [{ ...layer, name: 'l' }] }, 'body/layers/0 must NOT have additional properties');
    await refused(url, { layers: [layer], step: -1 }, 'body/step must be >= 0');
    await refused(url, { layers: [layer], step: 1.5 }, 'body/step must be integer');
    await refused(url, { layers: [layer], kind: 'linco' }, 'body/kind must be equal to constant');
    await refused(url, { layers: [layer], other: 1 }, 'body must NOT have additional properties');
  });

  it('LInCo results: an overall estimate with its interval, a confidence in (0, 1), 1 to 10000 groups', async () => {
    const url = `/api/runs/${runId}/results/linco`;
    const est = { value: 0.3, lo: 0.2, hi: 0.4 };
    const ok = { overall: est, groups: [{ group: 'g', value: 0.3 }] };
    await accepted(url, ok);
    await accepted(url, { kind: 'linco', metric: 'm'.repeat(100), confidence: 0.95, overall: { ...est, n: 0 }, baseline: est, groups: [{ group: 'g', value: 1, lo: 0, hi: 2, n: 5 }] });
    await refused(url, { ...ok, confidence: 0 }, 'body/confidence must be > 0');
    await refused(url, { ...ok, confidence: 1 }, 'body/confidence must be < 1');
    await refused(url, { ...ok, metric: '' }, 'body/metric must NOT have fewer than 1 characters');
    await refused(url, { ...ok, metric: 'm'.repeat(101) }, 'body/metric must NOT have more than 100 characters');
    for (const key of ['value', 'lo', 'hi']) {
      const { [key]: _gone, ...partial } = est as Record<string, number>;
      await refused(url, { ...ok, overall: partial }, `body/overall must have required property '${key}'`);
      await refused(url, { ...ok, baseline: partial }, `body/baseline must have required property '${key}'`);
      await refused(url, { ...ok, overall: { ...est, [key]: 'x' } }, `body/overall/${key} must be number`);
    }
    await refused(url, { ...ok, overall: { ...est, n: -1 } }, 'body/overall/n must be >= 0');
    await refused(url, { ...ok, overall: { ...est, n: 2.5 } }, 'body/overall/n must be integer');
    await refused(url, { groups: ok.groups }, "body must have required property 'overall'");
    await refused(url, { overall: est }, "body must have required property 'groups'");
    await refused(url, { ...ok, groups: [] }, 'body/groups must NOT have fewer than 1 items');
    await accepted(url, { ...ok, groups: Array.from({ length: 10_000 }, (_, i) => ({ group: `g${i}`, value: 0 })) });
    await refused(url, { ...ok, groups: Array.from({ length: 10_001 }, (_, i) => ({ group: `g${i}`, value: 0 })) }, 'body/groups must NOT have more than 10000 items');
    await refused(url, { ...ok, groups: [{ value: 1 }] }, "body/groups/0 must have required property 'group'");
    await refused(url, { ...ok, groups: [{ group: 'g' }] }, "body/groups/0 must have required property 'value'");
    await refused(url, { ...ok, groups: [{ group: '', value: 1 }] }, 'body/groups/0/group must NOT have fewer than 1 characters');
    await refused(url, { ...ok, groups: [{ group: 'g', value: 1, p: 0.1 }] }, 'body/groups/0 must NOT have additional properties');
    await refused(url, { ...ok, groups: [{ group: 'g', value: 1, n: -2 }] }, 'body/groups/0/n must be >= 0');
    await refused(url, { ...ok, kind: 'pointcloud' }, 'body/kind must be equal to constant');
    await refused(url, { ...ok, extra: true }, 'body must NOT have additional properties');
  });

  it('artifacts: names up to 100 characters (Fastify refuses longer path parameters with 414 before the schema’s 300)', async () => {
    const put = (name: string) => post(`/api/runs/${runId}/artifacts/${name}`, Buffer.from([1, 2]), `Bearer ${TOKEN}`, 'PUT');
    expect((await put('weights.safetensors')).statusCode).toBe(201);
    expect((await put('n'.repeat(100))).statusCode).toBe(201);
    expect((await put('n'.repeat(101))).statusCode).toBe(414);
  });

  it('jobs: a run id, a kind of segmentation or pointcloud, checkpoint and dataset names, at most 1000 classes', async () => {
    const ok = { runId, kind: 'segmentation', checkpoint: 'c.safetensors', dataset: 'd.bin' };
    // Accepted by the schema; refused afterwards because the artifacts do not exist.
    const r = await post('/api/jobs', ok);
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body).message).toContain("body/checkpoint: run '");
    const pc = await post('/api/jobs', { ...ok, kind: 'pointcloud', classes: ['a', 'b'] });
    expect(JSON.parse(pc.body).message).toContain('has no artifact');
    for (const key of ['runId', 'kind', 'checkpoint', 'dataset']) {
      const { [key]: _gone, ...partial } = ok as Record<string, string>;
      await refused('/api/jobs', partial, `body must have required property '${key}'`);
    }
    await refused('/api/jobs', { ...ok, kind: 'train' }, 'body/kind must be equal to one of the allowed values');
    await refused('/api/jobs', { ...ok, runId: '-x' }, 'body/runId must match pattern');
    await refused('/api/jobs', { ...ok, checkpoint: '' }, 'body/checkpoint must NOT have fewer than 1 characters');
    await refused('/api/jobs', { ...ok, checkpoint: 'c'.repeat(129) }, 'body/checkpoint must NOT have more than 128 characters');
    await refused('/api/jobs', { ...ok, dataset: '' }, 'body/dataset must NOT have fewer than 1 characters');
    await refused('/api/jobs', { ...ok, dataset: 'd'.repeat(129) }, 'body/dataset must NOT have more than 128 characters');
    await refused('/api/jobs', { ...ok, classes: new Array(1001).fill('c') }, 'body/classes must NOT have more than 1000 items');
    await refused('/api/jobs', { ...ok, classes: [''] }, 'body/classes/0 must NOT have fewer than 1 characters');
    await refused('/api/jobs', { ...ok, priority: 1 }, 'body must NOT have additional properties');
  });
});
