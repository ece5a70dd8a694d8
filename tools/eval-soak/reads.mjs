#!/usr/bin/env node
// Do series reads hold up writes and health checks? Usage:
//   node reads.mjs [--points 1000000] [--seconds 10] [--readers 4] [--out reads.json]
//
// Seeds one run with a `points`-long series through the API, then measures two phases of
// `seconds` each, alternating twice (quiet, reading, quiet, reading): in both, a prober asks
// /api/health every 50 ms and a writer appends 20-point batches back to back to another
// run; in the reading phases `readers` clients loop over the heaviest reads the API allows
// (the whole series reduced with maxPoints=4000, and pages of 100,000 points). Reports health
// latency and write throughput per phase kind, with the load average.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { arg, commit, freePort, startServer, stopServer, summary, timed } from './lib.mjs';

const points = Number(arg('points', '1000000'));
const seconds = Number(arg('seconds', '10'));
const readers = Number(arg('readers', '4'));
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

async function phase(reading) {
  let stop = false;
  const health = [];
  let written = 0;
  let step = 0;
  const readLatency = [];
  const prober = (async () => {
    while (!stop) {
      const t = performance.now();
      const r = await timed(`${url}/api/health`);
      if (r.ok) health.push(r.ms);
      await new Promise((res) => setTimeout(res, Math.max(0, 50 - (performance.now() - t))));
    }
  })();
  const writer = (async () => {
    while (!stop) {
      const batch = Array.from({ length: 20 }, () => ({ step: step++, name: 'loss', value: Math.random() }));
      const r = await timed(`${url}/api/runs/${writes}/metrics`, { method: 'POST', headers: auth, body: JSON.stringify({ points: batch }) });
      if (r.ok) written += 20;
    }
  })();
  const readerLoops = reading
    ? Array.from({ length: readers }, async (_, i) => {
        let after = -1;
        while (!stop) {
          const query = i % 2 === 0 ? 'maxPoints=4000' : `after=${after}&limit=100000`;
          const r = await timed(`${url}/api/runs/${big}/metrics?name=loss&${query}`);
          if (r.ok) readLatency.push(r.ms);
          if (i % 2 === 1) after = r.ok ? (JSON.parse(r.body).series.loss.next ?? -1) : -1;
        }
      })
    : [];
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  await Promise.all([prober, writer, ...readerLoops]);
  return { health, written, readLatency };
}

const results = { quiet: { health: [], written: 0, reads: [] }, reading: { health: [], written: 0, reads: [] } };
for (const reading of [false, true, false, true]) {
  const p = await phase(reading);
  const into = results[reading ? 'reading' : 'quiet'];
  into.health.push(...p.health);
  into.written += p.written;
  into.reads.push(...p.readLatency);
  console.log(`${reading ? 'reading' : 'quiet  '} phase: health ${JSON.stringify(summary(p.health))}, ${Math.round(p.written / seconds)} points written/s, ${p.readLatency.length} heavy reads`);
}
await stopServer(server);
const report = {
  date: new Date().toISOString(),
  commit: commit(),
  node: process.version,
  cpus: os.cpus().length,
  loadavg: { before: loadBefore.map((l) => Math.round(l * 100) / 100), after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
  config: { points, seconds, readers, phases: 'quiet, reading, quiet, reading' },
  quiet: { healthMs: summary(results.quiet.health), pointsWrittenPerSecond: Math.round(results.quiet.written / (2 * seconds)) },
  reading: {
    healthMs: summary(results.reading.health),
    pointsWrittenPerSecond: Math.round(results.reading.written / (2 * seconds)),
    heavyReadMs: summary(results.reading.reads),
  },
};
console.log(JSON.stringify(report, null, 2));
if (outPath) writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
