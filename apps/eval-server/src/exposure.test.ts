/**
 * The server as exposed to a network and to other users of the machine: Host allow-list,
 * the real listen address, failed-auth limit, token length and storage, file modes,
 * security headers, reads behind the token, and start-up errors without stack traces.
 */
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@kiln/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningServer, TOKEN, call, rawGet, runBin, startServer, waitForJob } from './test-support.js';

const servers: RunningServer[] = [];
async function serve(args: string[] = [], options: Parameters<typeof startServer>[1] = {}): Promise<RunningServer> {
  const s = await startServer(args, options);
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const mode = (path: string) => statSync(path).mode & 0o777;
const fresh = () => join(mkdtempSync(join(tmpdir(), 'kiln-eval-exposure-')), 'data');

describe('Host allow-list', () => {
  it('serves loopback names and the allowed ones, refuses others (DNS rebinding)', async () => {
    const server = await serve(['--allow-host', 'dash.lan,lab-box', '--allow-host', 'other.lan']);
    const port = new URL(server.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, 'dash.lan:8787', 'lab-box', 'other.lan']) {
      expect((await rawGet(server, '/api/runs', { host })).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, 'attacker.test', `127.0.0.1.evil.example:${port}`, 'localhost.evil.example', 'dash.lan.evil.example']) {
      for (const path of ['/api/runs', '/', '/api/health']) {
        const r = await rawGet(server, path, { host });
        expect(r.status, `${host} ${path}`).toBe(403);
        expect(r.text).toContain('--allow-host');
      }
    }
    const open = await serve(['--allow-host', '*']);
    expect((await rawGet(open, '/api/runs', { host: 'anything.example' })).status).toBe(200);
  });

  it('prints the address it really listens on', async () => {
    const server = await serve([], { host: '0.0.0.0' });
    expect(server.output()).toMatch(/listening on http:\/\/0\.0\.0\.0:\d+ \(every interface\)/);
    expect(server.output()).not.toMatch(/listening on http:\/\/127\.0\.0\.1/);
    expect(server.output()).toContain('add --allow-host NAME');
    expect((await call(server, 'GET', '/api/health')).status).toBe(200);
  });
});

describe('authentication', () => {
  it('limits failed authentications per address, then refuses even the right token until the window passes', async () => {
    const server = await serve(['--auth-failures', '5']);
    for (let i = 0; i < 5; i++) expect((await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token: `wrong-token-${i}-xxxxxxxx` })).status).toBe(401);
    const limited = await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token: 'wrong-token-again-xxxxxx' });
    expect(limited.status).toBe(429);
    expect(limited.body.message).toMatch(/too many failed authentications from 127\.0\.0\.1; try again in \d+ s/);
    const right = await fetch(`${server.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"name":"x"}' });
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(50);
    expect((await call(server, 'GET', '/api/runs')).status).toBe(200); // reads are not writes
  });

  it('refuses tokens shorter than 16 characters, from the flag or the environment', async () => {
    const dir = fresh();
    const flag = await runBin(['--port', '0', '--data-dir', dir, '--token', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--token is 1 characters long; use at least 16');
    const env = await runBin(['--port', '0', '--data-dir', dir], { ...process.env, KILN_EVAL_TOKEN: 'short-token' });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain('KILN_EVAL_TOKEN is 11 characters long');
    expect((await runBin(['--port', '0', '--data-dir', dir, '--token', 'sixteen chars ok'])).stderr).toContain('printable ASCII without spaces');
  });

  it('writes a generated token to a 0600 file instead of printing it, and reuses it', async () => {
    const dataDir = fresh();
    const server = await serve([], { token: null, dataDir, env: { ...process.env, KILN_EVAL_TOKEN: '', KILN_TOKEN: '' } });
    const file = join(dataDir, 'token');
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(mode(file)).toBe(0o600);
    expect(server.output()).not.toContain(token);
    expect(server.output()).toContain(`write token: generated into ${file} (mode 0600)`);
    expect((await call(server, 'POST', '/api/runs', { body: { name: 'x' }, token })).status).toBe(201);
    await server.stop();
    const again = await serve([], { token: null, dataDir, env: { ...process.env, KILN_EVAL_TOKEN: '', KILN_TOKEN: '' } });
    expect(again.output()).toContain('kept from an earlier start');
    expect((await call(again, 'POST', '/api/runs', { body: { name: 'y' }, token })).status).toBe(201);
  });

  it('reads the token from KILN_EVAL_TOKEN, and from KILN_TOKEN with a warning', async () => {
    const server = await serve([], { token: null, env: { ...process.env, KILN_EVAL_TOKEN: '', KILN_TOKEN: TOKEN } });
    expect(server.output()).toContain('warning: KILN_TOKEN is read for compatibility; set KILN_EVAL_TOKEN instead');
    expect((await call(server, 'POST', '/api/runs', { body: { name: 'x' } })).status).toBe(201);
    const preferred = await serve([], { token: null, env: { ...process.env, KILN_EVAL_TOKEN: TOKEN, KILN_TOKEN: 'other-token-0123456789' } });
    expect(preferred.output()).not.toContain('warning');
    expect((await call(preferred, 'POST', '/api/runs', { body: { name: 'x' } })).status).toBe(201);
  });

  it('can require the token for reads (not for the health check or the dashboard files)', async () => {
    const server = await serve(['--read-token']);
    const id = (await call(server, 'POST', '/api/runs', { body: { name: 'private' } })).body.id;
    for (const path of ['/api/runs', `/api/runs/${id}`, `/api/runs/${id}/metrics`, `/api/runs/${id}/artifacts`, '/api/jobs']) {
      const r = await call(server, 'GET', path, { token: null });
      expect(r.status, path).toBe(401);
      expect(r.body.message).toBe('reads need the header Authorization: Bearer <token>');
      expect((await call(server, 'GET', path)).status, path).toBe(200);
    }
    expect((await call(server, 'GET', '/api/health', { token: null })).status).toBe(200);
    expect((await call(server, 'GET', '/', { token: null })).status).toBe(200);
    const open = await serve();
    expect((await call(open, 'GET', '/api/runs', { token: null })).status).toBe(200);
  });
});

describe('files and headers', () => {
  it('creates folders 0700 and files 0600: database, WAL, artifacts, the 3-D view', async () => {
    const dataDir = fresh();
    const server = await serve([], { dataDir });
    const id = (await call(server, 'POST', '/api/runs', { body: { name: 'modes' } })).body.id;
    const n = 4;
    const dataset = encodeSafetensors({ labels: { dtype: 'I32', shape: [n], data: Int32Array.of(0, 1, 0, 1) }, points: { dtype: 'F32', shape: [n, 3], data: new Float32Array(3 * n) } });
    const pred = encodeSafetensors({ predictions: { dtype: 'I32', shape: [n], data: Int32Array.of(0, 1, 1, 1) } });
    await call(server, 'PUT', `/api/runs/${id}/artifacts/data.st`, { raw: dataset });
    await call(server, 'PUT', `/api/runs/${id}/artifacts/pred.st`, { raw: pred });
    await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points: [{ step: 1, name: 'loss', value: 1 }] } });
    const job = await waitForJob(server, (await call(server, 'POST', '/api/jobs', { body: { runId: id, kind: 'segmentation', checkpoint: 'pred.st', dataset: 'data.st' } })).body.id);
    expect(job.status, job.message).toBe('done');
    for (const dir of [dataDir, join(dataDir, 'artifacts'), join(dataDir, 'artifacts', id)]) expect(mode(dir).toString(8), dir).toBe('700');
    for (const file of ['kiln-eval.db', 'kiln-eval.db-wal', 'kiln-eval.db-shm', `artifacts/${id}/data.st`, `artifacts/${id}/pred.st`, `artifacts/${id}/pred.st.points.json`]) {
      expect(mode(join(dataDir, file)).toString(8), file).toBe('600');
    }
  });

  it('sends nosniff, a CSP and frame protection on every response; artifacts download as attachments', async () => {
    const server = await serve();
    const id = (await call(server, 'POST', '/api/runs', { body: { name: 'headers' } })).body.id;
    await call(server, 'PUT', `/api/runs/${id}/artifacts/page.html`, { raw: new TextEncoder().encode('<script>alert(1)</script>') });
    for (const path of ['/', '/app.js', '/api/health', '/api/runs', `/api/runs/${id}/artifacts/page.html`, '/api/runs/nope', '/missing.js', '/vendor/three/three.module.js']) {
      const r = await rawGet(server, path);
      expect(r.headers['x-content-type-options'], path).toBe('nosniff');
      expect(r.headers['content-security-policy'], path).toContain("default-src 'self'");
      expect(r.headers['content-security-policy'], path).toContain("frame-ancestors 'none'");
      expect(r.headers['x-frame-options'], path).toBe('DENY');
    }
    const artifact = await rawGet(server, `/api/runs/${id}/artifacts/page.html`);
    expect(artifact.headers['content-type']).toBe('application/octet-stream');
    expect(artifact.headers['content-disposition']).toBe('attachment; filename="page.html"');
  });
});

describe('start-up errors', () => {
  it('a port in use, a data directory that is a file, bad flags: exit 2 with one clear line', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const inUse = await runBin(['--port', String(port), '--data-dir', fresh(), '--token', TOKEN]);
      expect(inUse.code).toBe(2);
      expect(inUse.stderr).toBe(`kiln-eval-server: 127.0.0.1:${port} is already in use; stop what listens there or pick another --port (0 picks a free one)\n`);
    } finally {
      blocker.close();
    }
    const file = join(mkdtempSync(join(tmpdir(), 'kiln-eval-file-')), 'not-a-dir');
    writeFileSync(file, 'x');
    const isFile = await runBin(['--port', '0', '--data-dir', file, '--token', TOKEN]);
    expect(isFile.code).toBe(2);
    expect(isFile.stderr).toBe(`kiln-eval-server: data folder ${file} is a file, not a folder\n`);
    const under = await runBin(['--port', '0', '--data-dir', join(file, 'sub'), '--token', TOKEN]);
    expect(under.code).toBe(2);
    expect(under.stderr).toContain('is a file, not a folder');
    const flags = [['--port', '70000'], ['--port', 'abc'], ['--max-upload-mb', '-1'], ['--job-timeout-s', 'x'], ['--auth-failures', '1.5'], ['--nope']];
    const runs = await Promise.all(flags.map((args) => runBin([...args, '--data-dir', fresh(), '--token', TOKEN])));
    runs.forEach((r, i) => {
      expect(r.code, flags[i]!.join(' ')).toBe(2);
      expect(r.stderr, flags[i]!.join(' ')).not.toMatch(/\n\s+at /);
    });
    const badHost = await runBin(['--host', '203.0.113.7', '--port', '0', '--data-dir', fresh(), '--token', TOKEN]);
    expect(badHost.code).toBe(2);
    expect(badHost.stderr).toBe('kiln-eval-server: --host 203.0.113.7 is not an address of this machine\n');
  });
});
