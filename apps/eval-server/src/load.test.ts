/**
 * Load test: autocannon appends metric batches over loopback for a fixed number of
 * requests; the server must answer every one with 2xx, hold a steady per-second rate,
 * and store every row.
 */
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, TOKEN, call, startServer } from './test-support.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

const REQUESTS = 4000;
const POINTS_PER_REQUEST = 20;

describe('load', () => {
  it('appends metrics at a steady rate with no errors and no lost rows', async () => {
    const id = (await call(server, 'POST', '/api/runs', { body: { name: 'load test' } })).body.id as string;
    let batch = 0;
    const ticks: number[] = [];
    let instance!: autocannon.Instance;
    const done = new Promise<autocannon.Result>((resolve, reject) => {
      instance = autocannon({
      url: server.url,
      connections: 8,
      amount: REQUESTS,
      timeout: 10,
      requests: [
        {
          method: 'POST',
          path: `/api/runs/${id}/metrics`,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          setupRequest: (req: autocannon.Request) => {
            const b = batch++;
            const points = Array.from({ length: POINTS_PER_REQUEST }, (_, i) => ({ step: b * POINTS_PER_REQUEST + i, name: 'loss', value: Math.exp(-b / 1000) }));
            return { ...req, body: JSON.stringify({ points }) };
          },
        },
      ],
    }, (err, result) => (err ? reject(err) : resolve(result)));
    });
    // Responses per wall-clock second, sampled here rather than trusting one summary.
    let answered = 0;
    let last = 0;
    instance.on('response', () => {
      answered++;
    });
    const sampler = setInterval(() => {
      ticks.push(answered - last);
      last = answered;
    }, 1000);
    const result = await done.finally(() => clearInterval(sampler));
    ticks.push(answered - last);
    console.log(`per second: ${ticks.join(' ')}`);
    const perSecond = result.requests;
    console.log(
      `autocannon: ${result.requests.total} requests in ${(result.duration).toFixed(1)} s, mean ${perSecond.mean.toFixed(0)} req/s (min ${perSecond.min}, stddev ${perSecond.stddev.toFixed(0)}), ` +
        `latency p50 ${result.latency.p50} ms p99 ${result.latency.p99} ms, errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`,
    );
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result['2xx']).toBe(REQUESTS);
    // Steady: no full second stalls. Every full second (the last, partial one aside) stays
    // within a factor of five of the median; the bound is loose because this runs on a
    // shared 2-core machine whose other load swings the rate.
    const full = ticks.slice(0, -1);
    const sorted = [...full].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    for (const count of full) expect(count).toBeGreaterThan(median / 5);
    const { series } = (await call(server, 'GET', `/api/runs/${id}/metrics?name=loss&limit=100000`)).body;
    const steps: number[] = series.loss.steps;
    expect(steps.length).toBe(REQUESTS * POINTS_PER_REQUEST);
    expect(new Set(steps).size).toBe(REQUESTS * POINTS_PER_REQUEST); // every batch once
    expect(steps[steps.length - 1]).toBe(REQUESTS * POINTS_PER_REQUEST - 1);
    expect(series.loss.next).toBeNull();
  });
});
