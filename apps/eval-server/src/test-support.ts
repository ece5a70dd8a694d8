/** Starts the built server (bin/kiln-eval-server.mjs) on 127.0.0.1 with a fresh data folder. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataFolder } from './data-folder.js';
import { Store } from './store.js';

export const TOKEN = 'test-token-0123456789';

export interface RunningServer {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export const BIN = fileURLToPath(new URL('../bin/kiln-eval-server.mjs', import.meta.url));

export interface StartOptions {
  /** The --token flag (default TOKEN); null starts without one. */
  token?: string | null;
  /** --data-dir (default: a fresh temporary folder). */
  dataDir?: string;
  /** --host (default 127.0.0.1). */
  host?: string;
  /** --port (default 0). */
  port?: number;
  env?: NodeJS.ProcessEnv;
}

export async function startServer(extraArgs: string[] = [], options: StartOptions = {}): Promise<RunningServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kiln-eval-test-'));
  const token = options.token === undefined ? TOKEN : options.token;
  const args = [BIN, '--host', options.host ?? '127.0.0.1', '--port', String(options.port ?? 0), '--data-dir', dataDir, ...(token === null ? [] : ['--token', token]), ...extraArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /listening on (http:\/\/(\S+?):(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        // A wildcard address is reached through loopback.
        resolve(m[2] === '0.0.0.0' ? `http://127.0.0.1:${m[3]}` : m[2] === '[::]' ? `http://[::1]:${m[3]}` : m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return {
    url,
    dataDir,
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function call(
  server: RunningServer,
  method: string,
  path: string,
  options: { body?: unknown; raw?: Uint8Array; token?: string | null; contentType?: string; headers?: Record<string, string> } = {},
  // biome-ignore lint/suspicious/noExplicitAny: tests check response bodies field by field
): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Blob | undefined;
  if (options.raw) {
    body = new Blob([new Uint8Array(options.raw)]);
    headers['content-type'] = options.contentType ?? 'application/octet-stream';
  } else if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  const res = await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (static files)
  }
  return { status: res.status, body: parsed, text };
}

/**
 * A raw HTTP request whose path is sent byte for byte (fetch would normalize `..`) and whose
 * headers may include a Host of the caller's choice (fetch sets its own).
 */
export async function rawGet(
  server: RunningServer,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const { request } = await import('node:http');
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends the headers, gives the server a moment to answer from them alone (a 413 for an
 * over-long Content-Length comes before any body byte is read, and the server then closes
 * the socket, which fetch reports as EPIPE), and sends the body only if it has not answered.
 */
export async function sendEarlyAnswered(
  server: RunningServer,
  method: string,
  path: string,
  body: Uint8Array,
  contentType: string,
): Promise<{ status: number; text: string }> {
  const { request } = await import('node:http');
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { host: u.hostname, port: u.port, path, method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType, 'content-length': body.length } },
      (res) => {
        answered = true;
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.flushHeaders();
    setTimeout(() => {
      if (!answered) req.end(body);
    }, 1000);
  });
}

/** Polls a job until it is done or failed. */
// biome-ignore lint/suspicious/noExplicitAny: tests check job fields one by one
export async function waitForJob(server: RunningServer, id: string, timeoutMs = 120_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = (await call(server, 'GET', `/api/jobs/${id}`)).body;
    if (job.status === 'done' || job.status === 'failed') return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms: ${job.message}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a command and collects its exit code and output. */
export async function runBin(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Writes a run with one long series straight into a data folder's database (before a server
 * opens it): `points` steps 0..points−1 of `name`, value 1/(step+1) plus a ripple, and one
 * spike of 1000 at `spikeAt`. Returns the run id.
 */
export function seedSeries(dataDir: string, name: string, points: number, spikeAt: number): string {
  const store = new Store(new DataFolder(dataDir).databasePath);
  try {
    const run = store.createRun(`${points} points`, 'regress', { points }).run.id;
    store.db.transaction(() => {
      store.db
        .prepare(
          `WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
           INSERT INTO metrics (run_id, step, name, value)
           SELECT ?, x, ?, CASE WHEN x = ? THEN 1000.0 ELSE 1.0 / (x + 1) + (x % 100) * 1e-4 END FROM c`,
        )
        .run(points - 1, run, name, spikeAt);
      store.db.prepare('INSERT INTO series (run_id, name, points, last_step) VALUES (?, ?, ?, ?)').run(run, name, points, points - 1);
    })();
    return run;
  } finally {
    store.close();
  }
}
