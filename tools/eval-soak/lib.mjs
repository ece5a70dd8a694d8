// Helpers shared by soak.mjs and reads.mjs: the server binary, a free port, timed requests
// and latency summaries.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** The kiln-eval-server binary of the workspace's @kiln/eval-server (--server-bin PATH: another build, to compare). */
export function serverBin() {
  if (arg('server-bin')) return arg('server-bin');
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@kiln/eval-server/package.json')), 'bin', 'kiln-eval-server.mjs');
}

export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts the server; `ready` resolves once it listens. */
export function startServer(port, dataDir, token, extra = []) {
  const child = spawn(process.execPath, [serverBin(), '--port', String(port), '--data-dir', dataDir, '--token', token, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', () => {
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before it listened:\n${out}`));
    });
  });
  return { child, ready, output: () => out };
}

export async function stopServer(server) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await exited;
}

export async function timed(url, init = {}) {
  const t0 = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    const body = await res.text();
    return { ok: res.ok, status: res.status, ms: performance.now() - t0, body };
  } catch (err) {
    return { ok: false, status: 0, ms: performance.now() - t0, error: err.cause?.code ?? err.name };
  }
}

export function summary(latencies) {
  const s = [...latencies].sort((a, b) => a - b);
  const q = (p) => (s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 10) / 10 : null);
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.length ? Math.round(s.at(-1) * 10) / 10 : null };
}

export function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
