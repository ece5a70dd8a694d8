/**
 * Bounded reads against the real server: a series of a million points is read in pages or
 * reduced, never whole; and series reads run off the server's event loop, so health checks
 * and writes are answered while they scan.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, call, seedSeries, startServer } from './test-support.js';

const POINTS = 1_000_000;
const SPIKE = 777_777;
let server: RunningServer;
let run: string;

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-eval-reads-'));
  run = seedSeries(dataDir, 'loss', POINTS, SPIKE);
  server = await startServer([], { dataDir });
});
afterAll(async () => {
  await server?.stop();
});

describe('bounded reads', () => {
  it('answers a page of 10,000 points by default, with the step to continue after', async () => {
    const r = await call(server, 'GET', `/api/runs/${run}/metrics`);
    const loss = r.body.series.loss;
    expect(loss.steps.length).toBe(10_000);
    expect(loss).toMatchObject({ next: 9999, total: POINTS, downsampled: false });
    expect(r.text.length).toBeLessThan(400_000);
    const next = (await call(server, 'GET', `/api/runs/${run}/metrics?name=loss&after=${loss.next}&limit=5`)).body.series.loss;
    expect(next.steps).toEqual([10_000, 10_001, 10_002, 10_003, 10_004]);
    expect(next.next).toBe(10_004);
    const last = (await call(server, 'GET', `/api/runs/${run}/metrics?name=loss&after=${POINTS - 3}`)).body.series.loss;
    expect(last).toMatchObject({ steps: [POINTS - 2, POINTS - 1], next: null });
  });

  it('reduces the whole series to maxPoints, keeping the spike and both ends', async () => {
    const loss = (await call(server, 'GET', `/api/runs/${run}/metrics?name=loss&maxPoints=2000`)).body.series.loss;
    expect(loss.downsampled).toBe(true);
    expect(loss.steps.length).toBeLessThanOrEqual(2000);
    expect(loss.steps.length).toBeGreaterThan(1900);
    expect(loss.steps[0]).toBe(0);
    expect(loss.steps.at(-1)).toBe(POINTS - 1);
    expect(loss.values[loss.steps.indexOf(SPIKE)]).toBe(1000);
    expect(Math.max(...loss.values)).toBe(1000);
  });

  it('refuses unbounded or malformed read parameters with 400 naming them', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'querystring/limit must be an integer in 1..100000'],
      ['limit=100001', 'querystring/limit must be an integer in 1..100000'],
      ['limit=ten', 'querystring/limit must be an integer'],
      ['maxPoints=3', 'querystring/maxPoints must be an integer in 4..100000'],
      ['after=-2', 'querystring/after must be an integer in -1..'],
      ['after=1e3', 'querystring/after must be an integer'],
      ['limit=5&maxPoints=50', 'give limit (pages) or maxPoints (a reduced range), not both'],
      ['name=bad%20name', 'querystring/name must be a metric name'],
      ['everything=1', 'querystring/everything is not a parameter'],
    ];
    for (const [query, message] of cases) {
      const r = await call(server, 'GET', `/api/runs/${run}/metrics?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.message, query).toContain(message);
    }
  });

  it('answers health checks and writes while four full-series scans run', async () => {
    const other = (await call(server, 'POST', '/api/runs', { body: { name: 'writer' } })).body.id;
    // Four reductions of the million points: each scans the whole series in a reader thread.
    let scansDone = 0;
    const scans = Array.from({ length: 4 }, () =>
      call(server, 'GET', `/api/runs/${run}/metrics?name=loss&maxPoints=5000`).then((r) => {
        scansDone++;
        return r;
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
    // Answered while the scans still run: on the event loop, they would queue behind them.
    const quick: string[] = [];
    for (let i = 0; i < 5 && scansDone === 0; i++) {
      expect((await call(server, 'GET', '/api/health')).status).toBe(200);
      const w = await call(server, 'POST', `/api/runs/${other}/metrics`, { body: { points: [{ step: i, name: 'loss', value: i }] } });
      expect(w.status).toBe(200);
      if (scansDone === 0) quick.push(`health+write ${i}`);
    }
    const results = await Promise.all(scans);
    for (const r of results) expect(r.body.series.loss.values).toContain(1000);
    expect(quick.length).toBeGreaterThanOrEqual(3);
  });

  it('checkpoints the WAL off the event loop, so it is reused instead of growing with every write', async () => {
    const id = (await call(server, 'POST', '/api/runs', { body: { name: 'wal' } })).body.id;
    const write = async (from: number) => {
      for (let b = 0; b < 8; b++) {
        const points = Array.from({ length: 10_000 }, (_, i) => ({ step: from + b * 10_000 + i, name: 'x', value: i }));
        expect((await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } })).status).toBe(200);
      }
    };
    const wal = () => statSync(join(server.dataDir, 'kiln-eval.db-wal')).size;
    // The WAL index (the -shm file) says how far the WAL was copied back: its header's
    // mxFrame (offset 16) against the checkpoint's nBackfill (offset 96). Nothing but the
    // reader thread checkpoints (wal_autocheckpoint is 0), every second — later on a busy
    // machine, where that thread runs at a lowered priority, so the test waits for it.
    const checkpointed = async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const shm = readFileSync(join(server.dataDir, 'kiln-eval.db-shm'));
        const frames = shm.readUInt32LE(16);
        if (frames > 0 && shm.readUInt32LE(96) === frames) return;
        if (Date.now() > deadline) throw new Error(`the WAL was not checkpointed within 60 s (${shm.readUInt32LE(96)} of ${frames} frames)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await write(0);
    await checkpointed();
    const afterFirst = wal();
    await write(80_000);
    await checkpointed();
    // Checkpointed, the WAL restarts from its beginning: the second 80,000 rows reuse the
    // pages of the first instead of doubling the file.
    expect(wal()).toBeLessThan(1.5 * afterFirst);
    expect((await call(server, 'GET', `/api/runs/${id}`)).body.metricCount).toBe(160_000);
  });
});
