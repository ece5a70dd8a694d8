#!/usr/bin/env node
// Do series reads hold up writes and health checks? Usage:
//   node reads.mjs [--points 1000000] [--seconds 10] [--readers 4] [--out reads.json]
//                  [--server-bin PATH --server-label TEXT]   (another build of the server, to compare)
//
// Seeds one run with a `points`-long series through the API, then measures two phases of
// `seconds` each, alternating twice (quiet, reading, quiet, reading): in both, a prober asks
// /api/health every 50 ms and a writer appends 20-point batches back to back to another
// run; in the reading phases `readers` clients loop over the heaviest reads the API allows
// (the whole series reduced with maxPoints=4000, and pages of 100,000 points). Prober and
// writer run in threads of this process, the readers in a process of their own, so that
// receiving large answers never delays a health check's clock here. Reports health latency and write throughput per phase kind, with
// the load average.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fork } from 'node:child_process';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { arg, commit, freePort, startServer, stopServer, summary, timed } from './lib.mjs';

if (!isMainThread) {
  await ({ prober, writer })[workerData.role](workerData);
} else if (process.argv[2] === '--readers') {
  await readers(JSON.parse(process.argv[3]));
} else {
  await main();
}

/** Runs until the parent says stop, then posts what it measured. */
function untilStopped() {
  let stopped = false;
  parentPort.once('message', () => {
    stopped = true;
  });
  return () => stopped;
}

async function prober({ url }) {
  const stopped = untilStopped();
  const health = [];
  const loopMax = [];
  while (!stopped()) {
    const t = performance.now();
    const r = await timed(`${url}/api/health`);
    if (r.ok) {
      health.push(r.ms);
      const d = JSON.parse(r.body).eventLoopDelayMs;
      if (d) loopMax.push(d.max);
    }
    await new Promise((res) => setTimeout(res, Math.max(0, 50 - (performance.now() - t))));
  }
  parentPort.postMessage({ health, loopMax });
}

async function writer({ url, token, runId }) {
  const stopped = untilStopped();
  let written = 0;
  let step = workerData.firstStep;
  while (!stopped()) {
    const batch = Array.from({ length: 20 }, () => ({ step: step++, name: 'loss', value: Math.random() }));
    const r = await timed(`${url}/api/runs/${runId}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ points: batch }) });
    if (r.ok) written += 20;
  }
  parentPort.postMessage({ written, lastStep: step });
}

/** The reading clients, in this (forked) process: they loop until the parent says stop. */
async function readers({ url, runId, count }) {
  let stopped = false;
  process.once('message', () => {
    stopped = true;
  });
  const reads = [];
  await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      let after = -1;
      while (!stopped) {
        const query = index % 2 === 0 ? 'maxPoints=4000' : `after=${after}&limit=100000`;
        const r = await timed(`${url}/api/runs/${runId}/metrics?name=loss&${query}`);
        if (r.ok) reads.push(r.ms);
        // The page's `next`, found at the end of the answer without parsing 2.5 MB of JSON.
        if (index % 2 === 1) {
          const next = r.ok ? /"next":(\d+)/.exec(r.body.slice(-200)) : null;
          after = next ? Number(next[1]) : -1; // from the start again after the last page
        }
      }
    }),
  );
  process.send({ reads }, () => process.exit(0));
}

function thread(role, data) {
  const w = new Worker(new URL(import.meta.url), { workerData: { role, ...data } });
  const result = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return { stop: () => w.postMessage('stop'), result };
}

async function main() {

const points = Number(arg('points', '1000000'));
const seconds = Number(arg('seconds', '10'));
const readerCount = Number(arg('readers', '4'));
const outPath = arg('out');
const token = randomBytes(24).toString('base64url');
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const loadBefore = os.loadavg();
const server = startServer(port, mkdtempSync(join(os.tmpdir(), 'kiln-eval-reads-')), token);
await server.ready;

const post = async (path, body) => {
  const r = await timed(`${url}${path}`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${r.error ?? r.body}`);
  return JSON.parse(r.body);
};
const big = (await post('/api/runs', { name: 'a long series' })).id;
for (let start = 0; start < points; start += 10_000) {
  const batch = Array.from({ length: Math.min(10_000, points - start) }, (_, i) => ({ step: start + i, name: 'loss', value: 1 / (start + i + 1) }));
  await post(`/api/runs/${big}/metrics`, { points: batch });
}
const writes = (await post('/api/runs', { name: 'writer' })).id;
console.log(`seeded ${points} points; load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

let nextStep = 0;
async function phase(reading) {
  const prober = thread('prober', { url });
  const writer = thread('writer', { url, token, runId: writes, firstStep: nextStep });
  const readerProcess = reading ? fork(fileURLToPath(import.meta.url), ['--readers', JSON.stringify({ url, runId: big, count: readerCount })]) : undefined;
  const readResult = readerProcess ? new Promise((resolve) => readerProcess.once('message', resolve)) : Promise.resolve({ reads: [] });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const t of [prober, writer]) t.stop();
  readerProcess?.send('stop');
  const [{ health, loopMax }, w, { reads }] = await Promise.all([prober.result, writer.result, readResult]);
  nextStep = w.lastStep;
  return { health, loopMax, written: w.written, readLatency: reads };
}

const results = { quiet: { health: [], loopMax: [], written: 0, reads: [] }, reading: { health: [], loopMax: [], written: 0, reads: [] } };
for (const reading of [false, true, false, true]) {
  const p = await phase(reading);
  const into = results[reading ? 'reading' : 'quiet'];
  into.health.push(...p.health);
  into.loopMax.push(...p.loopMax);
  into.written += p.written;
  into.reads.push(...p.readLatency);
  console.log(
    `${reading ? 'reading' : 'quiet  '} phase: health ${JSON.stringify(summary(p.health))}, server event-loop delay (max per second) ${JSON.stringify(summary(p.loopMax))}, ${Math.round(p.written / seconds)} points written/s, ${p.readLatency.length} heavy reads`,
  );
}
await stopServer(server);
const report = {
  date: new Date().toISOString(),
  commit: commit(),
  node: process.version,
  cpus: os.cpus().length,
  loadavg: { before: loadBefore.map((l) => Math.round(l * 100) / 100), after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
  config: { points, seconds, readers: readerCount, phases: 'quiet, reading, quiet, reading', server: arg('server-label') ?? (arg('server-bin') ? 'another build' : 'this workspace') },
  quiet: { healthMs: summary(results.quiet.health), serverLoopDelayMaxPerSecondMs: summary(results.quiet.loopMax), pointsWrittenPerSecond: Math.round(results.quiet.written / (2 * seconds)) },
  reading: {
    healthMs: summary(results.reading.health),
    serverLoopDelayMaxPerSecondMs: summary(results.reading.loopMax),
    pointsWrittenPerSecond: Math.round(results.reading.written / (2 * seconds)),
    heavyReadMs: summary(results.reading.reads),
  },
};
console.log(JSON.stringify(report, null, 2));
if (outPath) writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
}
