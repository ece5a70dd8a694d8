/**
 * The eval server: Fastify routes over the SQLite store, token-guarded writes, size
 * limits, evaluation jobs in worker threads, and the dashboard (plus three.js from
 * node_modules) served as static files by the same process.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DataFolder } from './data-folder.js';
import { JobRunner, type JobSpec } from './jobs.js';
import { artifactParams, createRunBody, idParams, jobBody, metricsBody, resultBodies } from './schemas.js';
import { type MetricPoint, Store } from './store.js';

export interface ServerOptions {
  dataDir: string;
  /** Bearer token every write must carry. */
  token: string;
  /** Largest artifact upload in bytes (default 64 MiB). */
  maxUploadBytes?: number;
  /** Largest JSON body in bytes (default 4 MiB). */
  maxJsonBytes?: number;
  logger?: boolean;
}

export interface EvalServer {
  app: FastifyInstance;
  store: Store;
  folder: DataFolder;
  jobs: JobRunner;
}

function moduleDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** public/ sits next to dist/ (built) and src/ (tests). */
export function publicDir(): string {
  return resolve(moduleDir(), '..', 'public');
}

/** three.js's build folder, from this package's own dependency. */
export function threeBuildDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('three'));
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

export async function createServer(options: ServerOptions): Promise<EvalServer> {
  if (!options.token) throw new Error('createServer: a token is required (every write must carry it)');
  const folder = new DataFolder(options.dataDir);
  const store = new Store(folder.databasePath);
  const jobs = new JobRunner(store, folder);
  const maxUpload = options.maxUploadBytes ?? 64 * 1024 * 1024;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.maxJsonBytes ?? 4 * 1024 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });

  // Artifacts are raw bytes; they have their own, larger limit.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxUpload }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
    if (!tokenMatches(req.headers.authorization, options.token)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'writes need the header Authorization: Bearer <token>' });
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) app.log.error(err);
    reply.code(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message: err.message });
  });

  const runOr404 = (id: string) => {
    const run = store.getRun(id);
    if (!run) throw new HttpError(404, `run '${id}' does not exist`);
    return run;
  };

  app.get('/api/health', async () => ({ ok: true }));

  app.post('/api/runs', { schema: { body: createRunBody } }, async (req, reply) => {
    const body = req.body as { name: string; kind: string; config: unknown };
    const run = store.createRun(body.name, body.kind, body.config);
    return reply.code(201).send(run);
  });

  app.get('/api/runs', async () => ({ runs: store.listRuns() }));

  app.get('/api/runs/:id', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    const run = runOr404(id);
    return { ...run, results: store.results(id), artifacts: store.artifacts(id), jobs: store.jobs(id), metricCount: store.countMetrics(id) };
  });

  app.post('/api/runs/:id/metrics', { schema: { params: idParams, body: metricsBody } }, async (req) => {
    const { id } = req.params as { id: string };
    runOr404(id);
    const { points } = req.body as { points: MetricPoint[] };
    for (const [i, p] of points.entries()) {
      if (!Number.isFinite(p.value)) throw new HttpError(400, `body/points/${i}/value must be a finite number`);
    }
    return { inserted: store.appendMetrics(id, points) };
  });

  app.get('/api/runs/:id/metrics', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    runOr404(id);
    const { name } = req.query as { name?: string };
    return { series: store.metrics(id, name) };
  });

  for (const [kind, schema] of Object.entries(resultBodies)) {
    app.post(`/api/runs/:id/results/${kind}`, { schema: { params: idParams, body: schema } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      runOr404(id);
      const body = req.body as Record<string, unknown>;
      if (typeof body.pointsArtifact === 'string') DataFolder.checkName(body.pointsArtifact, 'pointsArtifact');
      return reply.code(201).send(store.addResult(id, kind, { ...body, kind }));
    });
  }

  app.get('/api/runs/:id/results', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    runOr404(id);
    return { results: store.results(id) };
  });

  app.put('/api/runs/:id/artifacts/:name', { schema: { params: artifactParams } }, async (req, reply) => {
    const { id, name } = req.params as { id: string; name: string };
    const path = folder.artifactPath(id, name); // refuses traversal before anything else
    runOr404(id);
    if (!Buffer.isBuffer(req.body)) throw new HttpError(415, 'upload artifacts with Content-Type: application/octet-stream');
    const bytes = req.body;
    mkdirSync(folder.artifactDir(id), { recursive: true });
    const tmp = `${path}.upload-${process.pid}-${Date.now()}`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
    const row = store.putArtifact({ runId: id, name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    return reply.code(201).send(row);
  });

  app.get('/api/runs/:id/artifacts', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    runOr404(id);
    return { artifacts: store.artifacts(id) };
  });

  app.get('/api/runs/:id/artifacts/:name', { schema: { params: artifactParams } }, async (req, reply) => {
    const { id, name } = req.params as { id: string; name: string };
    const path = folder.artifactPath(id, name);
    if (!store.getArtifact(id, name) || !existsSync(path)) throw new HttpError(404, `run '${id}' has no artifact '${name}'`);
    reply.header('content-type', CONTENT_TYPES[extname(name)] ?? 'application/octet-stream');
    return reply.send(createReadStream(path));
  });

  app.post('/api/jobs', { schema: { body: jobBody } }, async (req, reply) => {
    const spec = req.body as JobSpec;
    runOr404(spec.runId);
    for (const key of ['checkpoint', 'dataset'] as const) {
      folder.artifactPath(spec.runId, spec[key]);
      if (!store.getArtifact(spec.runId, spec[key])) throw new HttpError(400, `body/${key}: run '${spec.runId}' has no artifact '${spec[key]}'; upload it first`);
    }
    return reply.code(202).send(jobs.submit(spec));
  });

  app.get('/api/jobs/:id', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    const job = store.getJob(id);
    if (!job) throw new HttpError(404, `job '${id}' does not exist`);
    return job;
  });

  app.get('/api/jobs', async (req) => ({ jobs: store.jobs((req.query as { runId?: string }).runId) }));

  await app.register(fastifyStatic, { root: publicDir(), prefix: '/', index: ['index.html'], wildcard: true });
  await app.register(fastifyStatic, { root: threeBuildDir(), prefix: '/vendor/three/', decorateReply: false });

  app.addHook('onClose', async () => {
    await jobs.close();
    store.close();
  });
  return { app, store, folder, jobs };
}
