/** Helpers for the CLI end-to-end tests: spawn the built `kiln` binary. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KILN_BIN = fileURLToPath(new URL('../bin/kiln.mjs', import.meta.url));

export interface KilnResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The records of a run's `metrics.jsonl`, in the order written. */
export function metricRecords(dir: string): { step: number; loss?: number; [key: string]: unknown }[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** The `loss` values of a run's metrics log, in the order written. */
export function losses(dir: string): number[] {
  return metricRecords(dir)
    .filter((r) => r.loss !== undefined)
    .map((r) => r.loss!);
}

export function tempDir(prefix = 'kiln-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `as`: run as another user (uid and gid), e.g. nobody, where the tests run as root. */
export function spawnKiln(args: string[], env: Record<string, string> = {}, as?: { uid: number; gid: number }): { child: ChildProcess; done: Promise<KilnResult> } {
  const child = spawn(process.execPath, [KILN_BIN, ...args], {
    env: { ...process.env, KILN_BACKEND: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...as,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<KilnResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function kiln(args: string[], env: Record<string, string> = {}, as?: { uid: number; gid: number }): Promise<KilnResult> {
  return spawnKiln(args, env, as).done;
}

export function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim()).length;
}

/** Resolves once `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface RecordedRequest {
  method: string;
  url: string;
  auth: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: tests check recorded bodies field by field
  body: any;
}

export interface FakeEvalServer {
  url: string;
  /** Every request that reached the server, answered or not. */
  requests: RecordedRequest[];
  /** Metric points stored, in arrival order: each batch id once, as the real server does. */
  stored: { step: number; name: string; value: number }[];
  /** Refuses connections for `ms` (the listener is closed and reopened on the same port). */
  down(ms: number): Promise<void>;
  /** Stores the next `n` metric batches but drops the connection instead of answering. */
  loseAnswers(n: number): void;
  /** Answers the next `n` requests to `path` (a substring) with `status`. */
  failNext(path: string, status: number, n?: number): void;
  close: () => void;
}

/**
 * A stand-in eval server on 127.0.0.1 that records every request and answers like the real
 * one: 401 for another token (when `token` is given), a run id for POST /api/runs (the same
 * one for a repeated requestId), each metrics batchId stored once. It can go down, lose
 * answers and fail requests on demand.
 */
export async function startFakeEvalServer(options: { token?: string } = {}): Promise<FakeEvalServer> {
  const { createServer } = await import('node:http');
  const requests: RecordedRequest[] = [];
  const stored: FakeEvalServer['stored'] = [];
  const batches = new Set<string>();
  let losing = 0;
  const failures: { path: string; status: number; left: number }[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      let parsed: unknown = body;
      try {
        parsed = JSON.parse(body);
      } catch {
        // an artifact upload: keep the raw text
      }
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body: parsed });
      res.setHeader('content-type', 'application/json');
      const failure = failures.find((f) => f.left > 0 && req.url!.includes(f.path));
      if (failure) {
        failure.left--;
        res.statusCode = failure.status;
        res.end(JSON.stringify({ message: `injected ${failure.status}` }));
        return;
      }
      if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
        res.statusCode = 401;
        res.end(JSON.stringify({ message: 'writes need the header Authorization: Bearer <token>' }));
        return;
      }
      if (req.url!.endsWith('/metrics') && req.method === 'POST') {
        const { batchId, points } = parsed as { batchId?: string; points: FakeEvalServer['stored'] };
        const duplicate = batchId !== undefined && batches.has(batchId);
        if (!duplicate) {
          if (batchId !== undefined) batches.add(batchId);
          stored.push(...points);
        }
        if (losing > 0) {
          losing--;
          req.socket.destroy();
          return;
        }
        res.end(JSON.stringify({ inserted: duplicate ? 0 : points.length, replaced: 0, duplicate }));
        return;
      }
      res.statusCode = req.url === '/api/runs' || req.url!.includes('/results/') || req.method === 'PUT' ? 201 : 200;
      res.end(req.url === '/api/runs' ? JSON.stringify({ id: 'run-1' }) : JSON.stringify({ ok: true }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stored,
    async down(ms) {
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      });
      await new Promise((r) => setTimeout(r, ms));
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    loseAnswers(n) {
      losing += n;
    },
    failNext(path, status, n = 1) {
      failures.push({ path, status, left: n });
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** Why the mpirun tests cannot run here ('' when they can): no mpirun, or @kiln/mpi built without Open MPI. */
export function mpiSkipReason(): string {
  if (spawnSync('mpirun', ['--version']).status !== 0) return 'mpirun not found (install openmpi-bin)';
  try {
    const moeCore = dirname(createRequire(import.meta.url).resolve('@kiln/moe-core/package.json'));
    const mpi = dirname(createRequire(join(moeCore, 'package.json')).resolve('@kiln/mpi/package.json'));
    if (!existsSync(join(mpi, 'build', 'Release', 'kiln_mpi.node'))) return '@kiln/mpi was built without Open MPI';
  } catch {
    return '@kiln/mpi is not installed';
  }
  return '';
}
