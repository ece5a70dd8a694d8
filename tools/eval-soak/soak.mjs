#!/usr/bin/env node
// Soak test of the eval server (apps/eval-server). Usage:
//   node soak.mjs [--writers 20] [--dashboards 3] [--seconds 60] [--kills 3] [--out results.json]
//
// One server process on loopback with a fresh data folder. `writers` training-run writers —
// each the kiln command's own ServerSink (batches with ids, retries with backoff) — send a
// step of three metrics every 20 ms; `dashboards` readers poll like the dashboard does
// (runs list, a run, its series: a reduction first, then only new points), once a second;
// a prober asks /api/health every 50 ms. During the run the server is killed with SIGKILL
// `kills` times, evenly spaced, and restarted at once on the same port and data folder.
// Writers and readers run in threads, the prober in a process of its own, so that the
// clients' own work does not show in the health check's latency.
//
// Afterwards every series is read back through the API (paged) and checked: every point
// the server acknowledged is there with its value, nothing is there twice, and every point
// a writer produced arrived (the sink backfills). It passes when no acknowledged row is lost
// and the health check's p99 latency is under 100 ms. Exit code 1 when it does not.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { arg, commit, freePort, startServer, summary, timed } from './lib.mjs';

const WRITE_EVERY_MS = 20;
const READ_EVERY_MS = 1000;
const PROBE_EVERY_MS = 50;

// ---------------------------------------------------------------- the three kinds of clients

/** How a client talks to the orchestrator: as a worker thread, or as a forked process. */
const channel = !isMainThread
  ? { once: (f) => parentPort.once('message', f), post: (m) => parentPort.postMessage(m) }
  : { once: (f) => process.once('message', f), post: (m) => process.send(m, () => m.type === 'done' && process.exit(0)) };

async function writers({ url, token, count }) {
  const { ServerSink } = await import('@kiln/trainer');
  const state = [];
  for (let i = 0; i < count; i++) {
    const acked = [];
    const warnings = [];
    const sink = new ServerSink({
      url,
      token,
      warn: (m) => warnings.push(m),
      retryBaseMs: 100,
      retryMaxMs: 2000,
      closeWaitMs: 120_000,
      onDelivered: (points) => {
        for (const p of points) acked.push([p.name, p.step, p.value]);
      },
    });
    await sink.start(`soak writer ${i}`, 'soak', { writer: i });
    const w = { sink, acked, warnings, step: 0, produced: 0 };
    w.timer = setInterval(() => {
      w.step++;
      const s = w.step;
      w.sink.push([
        { step: s, name: 'loss', value: 1 / s + i },
        { step: s, name: 'lr', value: 0.001 * (i + 1) },
        { step: s, name: 'acc', value: (s % 1000) / 1000 },
      ]);
      w.produced += 3;
    }, WRITE_EVERY_MS);
    state.push(w);
  }
  channel.post({ type: 'started', runIds: state.map((w) => w.sink.id) });
  await new Promise((resolve) => channel.once(resolve));
  for (const w of state) clearInterval(w.timer);
  const t0 = performance.now();
  await Promise.all(state.map((w) => w.sink.close()));
  channel.post({
    type: 'done',
    drainMs: performance.now() - t0,
    writers: state.map((w) => ({ runId: w.sink.id, produced: w.produced, steps: w.step, acked: w.acked, pending: w.sink.pending, warnings: w.warnings.slice(0, 10) })),
  });
}

async function dashboards({ url, count }) {
  const latencies = [];
  let requests = 0;
  let failed = 0;
  let stop = false;
  channel.once(() => {
    stop = true;
  });
  const get = async (path) => {
    const r = await timed(`${url}${path}`);
    requests++;
    if (r.ok) latencies.push(r.ms);
    else failed++;
    return r.ok ? JSON.parse(r.body) : undefined;
  };
  const loop = async (d) => {
    const held = new Map(); // `${run}/${name}` → last step held
    while (!stop) {
      const started = performance.now();
      const list = await get('/api/runs');
      const mine = (list?.runs ?? []).filter((_, i) => i % count === d);
      for (const run of mine.slice(0, 3)) {
        const detail = await get(`/api/runs/${run.id}`);
        for (const s of detail?.series ?? []) {
          const key = `${run.id}/${s.name}`;
          const after = held.get(key);
          const page = await get(
            after === undefined
              ? `/api/runs/${run.id}/metrics?name=${s.name}&maxPoints=4000`
              : `/api/runs/${run.id}/metrics?name=${s.name}&after=${after}&limit=10000`,
          );
          const got = page?.series?.[s.name];
          if (got?.steps.length) held.set(key, got.steps.at(-1));
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(0, READ_EVERY_MS - (performance.now() - started))));
    }
  };
  await Promise.all(Array.from({ length: count }, (_, d) => loop(d)));
  channel.post({ type: 'done', requests, failed, latency: summary(latencies) });
}

async function prober({ url }) {
  const latencies = [];
  const loopMax = [];
  const failures = {};
  let stop = false;
  channel.once(() => {
    stop = true;
  });
  while (!stop) {
    const started = performance.now();
    const r = await timed(`${url}/api/health`);
    if (r.ok) {
      latencies.push(r.ms);
      loopMax.push(JSON.parse(r.body).eventLoopDelayMs.max);
    }
    else failures[r.error ?? `HTTP ${r.status}`] = (failures[r.error ?? `HTTP ${r.status}`] ?? 0) + 1;
    await new Promise((res) => setTimeout(res, Math.max(0, PROBE_EVERY_MS - (performance.now() - started))));
  }
  channel.post({ type: 'done', latencies, loopMax, failures });
}

const roles = { writers, dashboards, prober };
if (!isMainThread) await roles[workerData.role](workerData);
else if (process.argv[2] === '--role') await roles[process.argv[3]](JSON.parse(process.argv[4]));
else await main();

// ---------------------------------------------------------------- the orchestration

/** Starts a client in a thread, or with `ownProcess` in a forked process. */
function role(name, data, ownProcess = false) {
  const worker = ownProcess ? fork(fileURLToPath(import.meta.url), ['--role', name, JSON.stringify(data)]) : new Worker(new URL(import.meta.url), { workerData: { role: name, ...data } });
  const messages = [];
  let waiting;
  worker.on('message', (m) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(m);
    } else messages.push(m);
  });
  worker.on('error', (err) => {
    console.error(`${name} thread failed:`, err);
    process.exit(1);
  });
  return {
    worker,
    next: () => (messages.length ? Promise.resolve(messages.shift()) : new Promise((r) => (waiting = r))),
    stop: () => (ownProcess ? worker.send('stop') : worker.postMessage('stop')),
  };
}

/** Every point of a series through the API, page by page. */
async function readAll(url, token, runId, name) {
  const steps = [];
  const values = [];
  let after = -1;
  for (;;) {
    const r = await timed(`${url}/api/runs/${runId}/metrics?name=${name}&after=${after}&limit=100000`, { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`reading ${runId}/${name} failed: ${r.status} ${r.error ?? r.body}`);
    const page = JSON.parse(r.body).series[name];
    if (!page) break;
    steps.push(...page.steps);
    values.push(...page.values);
    if (page.next === null) break;
    after = page.next;
  }
  return { steps, values };
}

async function main() {
  const config = {
    writers: Number(arg('writers', '20')),
    dashboards: Number(arg('dashboards', '3')),
    seconds: Number(arg('seconds', '60')),
    kills: Number(arg('kills', '3')),
    writeEveryMs: WRITE_EVERY_MS,
    pointsPerWrite: 3,
    readEveryMs: READ_EVERY_MS,
    probeEveryMs: PROBE_EVERY_MS,
  };
  const outPath = arg('out');
  const dataDir = mkdtempSync(join(os.tmpdir(), 'kiln-eval-soak-'));
  const token = randomBytes(24).toString('base64url');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const loadBefore = os.loadavg();
  console.log(`soak: ${config.writers} writers, ${config.dashboards} dashboards, ${config.seconds} s, ${config.kills} kills; data ${dataDir}; load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

  let server = startServer(port, dataDir, token);
  await server.ready;
  const health = role('prober', { url }, true);
  const write = role('writers', { url, token, count: config.writers });
  const started = await write.next();
  const read = role('dashboards', { url, count: config.dashboards });
  const t0 = performance.now();
  const kills = [];
  for (let k = 1; k <= config.kills; k++) {
    const at = (config.seconds * 1000 * k) / (config.kills + 1);
    await new Promise((r) => setTimeout(r, Math.max(0, at - (performance.now() - t0))));
    const killedAt = performance.now();
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGKILL');
    await exited;
    server = startServer(port, dataDir, token);
    await server.ready;
    const downMs = performance.now() - killedAt;
    kills.push({ atSeconds: Math.round((killedAt - t0) / 100) / 10, downMs: Math.round(downMs) });
    console.log(`  kill ${k} at ${((killedAt - t0) / 1000).toFixed(1)} s: listening again after ${Math.round(downMs)} ms`);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, config.seconds * 1000 - (performance.now() - t0))));
  write.stop();
  read.stop();
  const writes = await write.next();
  health.stop();
  const reads = await read.next();
  const probes = await health.next();
  const elapsed = (performance.now() - t0) / 1000;

  // Check every series against what the writers produced and what the server acknowledged.
  let produced = 0;
  let acknowledged = 0;
  let stored = 0;
  let lostAcknowledged = 0;
  let missing = 0;
  let duplicates = 0;
  let wrongValues = 0;
  for (const w of writes.writers) {
    produced += w.produced;
    acknowledged += w.acked.length;
    const byName = {};
    for (const name of ['loss', 'lr', 'acc']) {
      const s = await readAll(url, token, w.runId, name);
      stored += s.steps.length;
      duplicates += s.steps.length - new Set(s.steps).size;
      byName[name] = new Map(s.steps.map((st, i) => [st, s.values[i]]));
      missing += w.steps - byName[name].size;
    }
    for (const [name, step, value] of w.acked) {
      const got = byName[name].get(step);
      if (got === undefined) lostAcknowledged++;
      else if (got !== value) wrongValues++;
    }
  }
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await exited;
  const healthSummary = summary(probes.latencies);
  const pass = lostAcknowledged === 0 && wrongValues === 0 && duplicates === 0 && healthSummary.p99 !== null && healthSummary.p99 < 100;
  const result = {
    date: new Date().toISOString(),
    commit: commit(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg: { before: loadBefore.map((l) => Math.round(l * 100) / 100), after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    config,
    seconds: Math.round(elapsed * 10) / 10,
    kills,
    writes: {
      runs: started.runIds.length,
      produced,
      acknowledged,
      stored,
      lostAcknowledged,
      missing,
      duplicates,
      wrongValues,
      acknowledgedPerSecond: Math.round(acknowledged / elapsed),
      drainSecondsAfterStop: Math.round(writes.drainMs / 100) / 10,
      pendingAtEnd: writes.writers.reduce((a, w) => a + w.pending, 0),
    },
    reads: { requests: reads.requests, failed: reads.failed, latencyMs: reads.latency },
    health: {
      probes: probes.latencies.length + Object.values(probes.failures).reduce((a, b) => a + b, 0),
      failedWhileDown: probes.failures,
      latencyMs: healthSummary,
      serverLoopDelayMaxPerSecondMs: summary(probes.loopMax),
    },
    pass,
  };
  console.log(JSON.stringify(result, null, 2));
  if (outPath) writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(pass ? 0 : 1);
}
