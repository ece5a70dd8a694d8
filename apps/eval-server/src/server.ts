/**
 * The eval server: Fastify routes over the SQLite store, token-guarded writes (and reads,
 * when asked), a Host allow-list, size limits, series reads in worker threads, evaluation
 * jobs in child processes, and the dashboard (plus three.js from node_modules) served as
 * static files by the same process.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, writeFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DataFolder, FILE_MODE } from './data-folder.js';
import { parseJsonBody } from './json-body.js';
import { type JobLimits, JobRunner, type JobSpec } from './jobs.js';
import { annotateRunBody, artifactParams, createRunBody, idParams, jobBody, metricsBody, resultBodies } from './schemas.js';
import { AuthFailureLimiter, LOOPBACK_HOSTS, SECURITY_HEADERS, bearerMatches, checkToken, hostName } from './security.js';
import { isSeriesName, parseSeriesName, seriesName } from './series-name.js';
import { MAX_PAGE, type SeriesQuery } from './series-query.js';
import { SeriesReaders } from './series-readers.js';
import { type MetricPoint, Store } from './store.js';

export interface ServerOptions {
  dataDir: string;
  /** Bearer token every write must carry (at least MIN_TOKEN_LENGTH characters). */
  token: string;
  /** Reads under /api/ need the token too (the health check excepted). */
  requireTokenForReads?: boolean;
  /** Host names served (default: the loopback names); 'any' turns the check off. */
  allowedHosts?: Iterable<string> | 'any';
  /** Failed authentications per client address and window before it gets 429s (default 20 per 60 s). */
  authFailures?: { limit: number; windowMs: number };
  /** Largest artifact upload in bytes (default 64 MiB). */
  maxUploadBytes?: number;
  /** Largest JSON body in bytes (default 4 MiB). */
  maxJsonBytes?: number;
  /** Memory and time limits of evaluation jobs. */
  jobLimits?: Partial<JobLimits>;
  /** Worker threads serving series reads (default 2). */
  seriesReaders?: number;
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

export class HttpError extends Error {
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

/** `?name=&after=&limit=&maxPoints=` of a series read, checked; errors name the parameter. */
export function parseSeriesQuery(raw: Record<string, unknown>): SeriesQuery {
  const known = new Set(['name', 'after', 'limit', 'maxPoints']);
  for (const key of Object.keys(raw)) if (!known.has(key)) throw new HttpError(400, `querystring/${key} is not a parameter (name, after, limit, maxPoints)`);
  const int = (key: string, min: number, max: number): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'string' && /^-?\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, `querystring/${key} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const name = raw.name;
  if (name !== undefined && (typeof name !== 'string' || !isSeriesName(name))) {
    throw new HttpError(400, 'querystring/name must be a metric name (1-100 letters, digits, _ . / : -), optionally with its series key: name{key}');
  }
  const query: SeriesQuery = {
    name: name as string | undefined,
    after: int('after', -1, Number.MAX_SAFE_INTEGER),
    limit: int('limit', 1, MAX_PAGE),
    maxPoints: int('maxPoints', 4, MAX_PAGE),
  };
  if (query.limit !== undefined && query.maxPoints !== undefined) throw new HttpError(400, 'querystring: give limit (pages) or maxPoints (a reduced range), not both');
  return query;
}

/** Intervals must not be upside down: lo ≤ hi wherever a LInCo result has both. */
function checkIntervals(body: Record<string, unknown>): void {
  const check = (e: { lo?: number; hi?: number } | undefined, path: string) => {
    if (e && e.lo !== undefined && e.hi !== undefined && e.lo > e.hi) throw new HttpError(400, `body/${path}: lo ${e.lo} is greater than hi ${e.hi}`);
  };
  check(body.overall as { lo: number; hi: number }, 'overall');
  check(body.baseline as { lo: number; hi: number } | undefined, 'baseline');
  for (const [i, g] of (body.groups as { lo?: number; hi?: number }[]).entries()) check(g, `groups/${i}`);
}

export async function createServer(options: ServerOptions): Promise<EvalServer> {
  checkToken(options.token, 'the token');
  const folder = new DataFolder(options.dataDir);
  const store = new Store(folder.databasePath);
  const jobs = new JobRunner(store, folder, options.jobLimits);
  const readers = new SeriesReaders(folder.databasePath, options.seriesReaders ?? 2);
  const maxUpload = options.maxUploadBytes ?? 64 * 1024 * 1024;
  const allowed = options.allowedHosts === 'any' ? 'any' : new Set([...(options.allowedHosts ?? LOOPBACK_HOSTS)].map((h) => hostName(h) ?? h));
  const limiter = new AuthFailureLimiter(options.authFailures?.limit, options.authFailures?.windowMs);
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.maxJsonBytes ?? 4 * 1024 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // Artifacts are raw bytes; they have their own, larger limit.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxUpload }, (_req, body, done) => done(null, body));

  const refuse = (reply: FastifyReply, status: number, message: string) => reply.code(status).send({ statusCode: status, error: STATUS_CODES[status], message });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(SECURITY_HEADERS);
    if (allowed !== 'any') {
      const host = hostName(req.headers.host);
      if (!host || !allowed.has(host)) {
        return refuse(reply, 403, `Host ${JSON.stringify(req.headers.host ?? '')} is not served here; start the server with --allow-host ${host ?? 'NAME'} to allow it`);
      }
    }
    const read = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
    const path = req.url.split('?')[0]!;
    const needsToken = !read || (options.requireTokenForReads === true && path.startsWith('/api/') && path !== '/api/health');
    if (!needsToken) return;
    const blocked = limiter.blockedFor(req.ip);
    if (blocked > 0) {
      reply.header('retry-after', String(Math.ceil(blocked / 1000)));
      return refuse(reply, 429, `too many failed authentications from ${req.ip}; try again in ${Math.ceil(blocked / 1000)} s`);
    }
    if (!bearerMatches(req.headers.authorization, options.token)) {
      limiter.fail(req.ip);
      reply.header('www-authenticate', 'Bearer');
      return refuse(reply, 401, `${read ? 'reads' : 'writes'} need the header Authorization: Bearer <token>`);
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) app.log.error(err);
    refuse(reply, status, err.message);
  });

  const runOr404 = (id: string): void => {
    if (!store.hasRun(id)) throw new HttpError(404, `run '${id}' does not exist`);
  };

  // The event loop's delay over the last full second: what a request waited before the server
  // could look at it (series reads and jobs run elsewhere, so this stays small under them).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  let lastSecond = { p99: 0, max: 0 };
  const sampler = setInterval(() => {
    lastSecond = { p99: Math.round(loopDelay.percentile(99) / 1e5) / 10, max: Math.round(loopDelay.max / 1e5) / 10 };
    loopDelay.reset();
  }, 1000);
  sampler.unref();
  app.get('/api/health', async () => ({ ok: true, eventLoopDelayMs: lastSecond }));

  app.post('/api/runs', { schema: { body: createRunBody } }, async (req, reply) => {
    const body = req.body as { name: string; kind: string; config: unknown; requestId?: string };
    const { run, created } = store.createRun(body.name, body.kind, body.config, body.requestId);
    return reply.code(created ? 201 : 200).send(run);
  });

  app.get('/api/runs', async () => ({ runs: store.listRuns() }));

  app.get('/api/runs/:id', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    const run = store.getRun(id);
    if (!run) throw new HttpError(404, `run '${id}' does not exist`);
    const series = store.series(id).map((s) => ({ ...s, ...parseSeriesName(s.name) }));
    return {
      ...run,
      results: store.results(id),
      artifacts: store.artifacts(id),
      jobs: store.jobs(id),
      series,
      metricCount: series.reduce((a, s) => a + s.points, 0),
    };
  });

  app.patch('/api/runs/:id', { schema: { params: idParams, body: annotateRunBody } }, async (req) => {
    const { id } = req.params as { id: string };
    const run = store.annotateRun(id, req.body as { tags?: string[]; note?: string });
    if (!run) throw new HttpError(404, `run '${id}' does not exist`);
    return run;
  });

  app.post('/api/runs/:id/metrics', { schema: { params: idParams, body: metricsBody } }, async (req) => {
    const { id } = req.params as { id: string };
    runOr404(id);
    const { points, batchId } = req.body as { points: (MetricPoint & { key?: string })[]; batchId?: string };
    for (const [i, p] of points.entries()) {
      if (!Number.isFinite(p.value)) throw new HttpError(400, `body/points/${i}/value must be a finite number`);
    }
    return store.appendMetrics(
      id,
      points.map((p) => ({ step: p.step, name: seriesName(p.name, p.key), value: p.value, time: p.time })),
      batchId,
    );
  });

  app.get('/api/runs/:id/metrics', { schema: { params: idParams } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const query = parseSeriesQuery(req.query as Record<string, unknown>);
    runOr404(id);
    const json = await readers.read(id, query); // read and serialised off the event loop
    return reply.header('content-type', 'application/json; charset=utf-8').send(Buffer.from(json.buffer, json.byteOffset, json.byteLength));
  });

  for (const [kind, schema] of Object.entries(resultBodies)) {
    app.post(`/api/runs/:id/results/${kind}`, { schema: { params: idParams, body: schema } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      runOr404(id);
      const { requestId, ...body } = req.body as Record<string, unknown> & { requestId?: string };
      if (typeof body.pointsArtifact === 'string') DataFolder.checkName(body.pointsArtifact, 'pointsArtifact');
      if (kind === 'linco') checkIntervals(body);
      const { row, created } = store.addResult(id, kind, { ...body, kind }, requestId);
      return reply.code(created ? 201 : 200).send(row);
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
    folder.ensureArtifactDir(id);
    const tmp = `${path}.upload-${process.pid}-${Date.now()}`;
    writeFileSync(tmp, bytes, { mode: FILE_MODE });
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
    reply.header('content-disposition', `attachment; filename="${name}"`);
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
    clearInterval(sampler);
    loopDelay.disable();
    await jobs.close();
    await readers.close();
    store.close();
  });
  return { app, store, folder, jobs };
}
