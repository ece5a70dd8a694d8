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

export function spawnKiln(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<KilnResult> } {
  const child = spawn(process.execPath, [KILN_BIN, ...args], {
    env: { ...process.env, KILN_BACKEND: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
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

export function kiln(args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
  return spawnKiln(args, env).done;
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

/** A stand-in eval server on 127.0.0.1 that records every request and answers like the real one. */
export async function startFakeEvalServer(): Promise<{ url: string; requests: RecordedRequest[]; close: () => void }> {
  const { createServer } = await import('node:http');
  const requests: RecordedRequest[] = [];
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
      res.statusCode = req.url === '/api/runs' || req.url!.includes('/results/') || req.method === 'PUT' ? 201 : 200;
      res.end(req.url === '/api/runs' ? JSON.stringify({ id: 'run-1' }) : JSON.stringify({ inserted: 1 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, requests, close: () => server.close() };
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
