/** Starts the built server (bin/kiln-eval-server.mjs) on 127.0.0.1 with a fresh data folder. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOKEN = 'test-token-0123456789';

export interface RunningServer {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export async function startServer(extraArgs: string[] = []): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-eval-test-'));
  const bin = fileURLToPath(new URL('../bin/kiln-eval-server.mjs', import.meta.url));
  const child = spawn(process.execPath, [bin, '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--token', TOKEN, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
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
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function call(
  server: RunningServer,
  method: string,
  path: string,
  options: { body?: unknown; raw?: Uint8Array; token?: string | null; contentType?: string } = {},
  // biome-ignore lint/suspicious/noExplicitAny: tests check response bodies field by field
): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = {};
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

/** A raw HTTP request whose path is sent byte for byte (fetch would normalize `..`). */
export async function rawGet(server: RunningServer, path: string): Promise<{ status: number; text: string }> {
  const { request } = await import('node:http');
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, text }));
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
