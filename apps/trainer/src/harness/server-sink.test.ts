/**
 * The eval-server sink against a stand-in server that goes down, loses answers and refuses
 * requests: nothing acknowledged is lost or stored twice, everything queued during an outage
 * arrives in order when the server is back, and the sink never stops on its own while the
 * server may still come back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeEvalServer, startFakeEvalServer, waitFor } from '../test-support.js';
import { type ServerSinkOptions, ServerSink, SinkAuthError } from './server-sink.js';

const fakes: FakeEvalServer[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.close();
});

async function fake(options: { token?: string } = {}): Promise<FakeEvalServer> {
  const f = await startFakeEvalServer(options);
  fakes.push(f);
  return f;
}

function sinkFor(url: string, warnings: string[], options: Partial<ServerSinkOptions> = {}): ServerSink {
  return new ServerSink({ url, token: 'tok', warn: (m) => warnings.push(m), batchSize: 10, retryBaseMs: 20, retryMaxMs: 200, requestTimeoutMs: 2000, closeWaitMs: 10_000, ...options });
}

const steps = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ step: from + i, name: 'loss', value: 1 / (from + i + 1) }));

describe('ServerSink', () => {
  it('backfills everything queued during an outage, in order, once each', async () => {
    const server = await fake();
    const warnings: string[] = [];
    const sink = sinkFor(server.url, warnings);
    await sink.start('run', 'regress', { steps: 300 });
    sink.push(steps(0, 100));
    await waitFor(() => server.stored.length === 100, 10_000, 'the first 100 points');
    const outage = server.down(800);
    // the run goes on while the server is away
    for (let s = 100; s < 300; s += 10) {
      sink.push(steps(s, s + 10));
      await new Promise((r) => setTimeout(r, 5));
    }
    await outage;
    await sink.close();
    expect(server.stored.map((p) => p.step)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(sink.delivered).toBe(300);
    expect(sink.pending).toBe(0);
    expect(warnings.some((w) => w.includes('retrying in the background'))).toBe(true);
    expect(warnings.some((w) => w.includes('answers again after'))).toBe(true);
  });

  it('stores a batch once when its answer is lost and it is sent again (same batch id)', async () => {
    const server = await fake();
    const sink = sinkFor(server.url, []);
    await sink.start('run', 'regress', {});
    server.loseAnswers(3);
    sink.push(steps(0, 50));
    await sink.close();
    const sent = server.requests.filter((r) => r.url.endsWith('/metrics'));
    expect(sent.length).toBe(5 + 3); // three batches sent twice
    const ids = sent.map((r) => r.body.batchId as string);
    expect(new Set(ids).size).toBe(5);
    expect(server.stored.map((p) => p.step)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('creates the run later when the server is down at the start, and sends what came before', async () => {
    const server = await fake();
    const down = server.down(600);
    await new Promise((r) => setTimeout(r, 50));
    const warnings: string[] = [];
    const sink = sinkFor(server.url, warnings);
    await sink.start('late run', 'regress', { a: 1 });
    expect(sink.id).toBeUndefined();
    sink.push(steps(0, 25));
    await down;
    await sink.close();
    expect(sink.id).toBe('run-1');
    const runs = server.requests.filter((r) => r.url === '/api/runs');
    expect(runs.length).toBe(1);
    expect(runs[0]!.body).toMatchObject({ name: 'late run', requestId: expect.stringMatching(/:run$/) });
    expect(server.stored.length).toBe(25);
  });

  it('keeps retrying 5xx and 429, drops a batch the server calls malformed, and goes on', async () => {
    const server = await fake();
    const warnings: string[] = [];
    const sink = sinkFor(server.url, warnings);
    await sink.start('run', 'regress', {});
    server.failNext('/metrics', 503, 2);
    server.failNext('/metrics', 429, 1);
    sink.push(steps(0, 10));
    await waitFor(() => server.stored.length === 10, 10_000, 'the retried batch');
    server.failNext('/metrics', 400, 1);
    sink.push(steps(10, 30));
    await sink.close();
    expect(server.stored.map((p) => p.step)).toEqual([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => 20 + i)]);
    expect(warnings.some((w) => w.includes('refused a batch of 10 metric points (steps 10..19): HTTP 400'))).toBe(true);
  });

  it('throws SinkAuthError at the start when the server refuses the token', async () => {
    const server = await fake({ token: 'right-token' });
    const sink = sinkFor(server.url, []);
    await expect(sink.start('run', 'regress', {})).rejects.toThrow(SinkAuthError);
    await expect(sink.start('run', 'regress', {})).rejects.toThrow('refused the token (HTTP 401): give the server\'s token with --token or KILN_EVAL_TOKEN');
    sink.push(steps(0, 10));
    await sink.close();
    expect(server.requests.filter((r) => r.url.endsWith('/metrics'))).toEqual([]);
  });

  it('drops the oldest batches past its queue limit during a long outage, saying so', async () => {
    const server = await fake();
    const warnings: string[] = [];
    const sink = sinkFor(server.url, warnings, { maxQueuedPoints: 100 });
    await sink.start('run', 'regress', {});
    const outage = server.down(700);
    sink.push(steps(0, 300));
    expect(sink.pending).toBe(100);
    await outage;
    await sink.close();
    expect(server.stored.map((p) => p.step)).toEqual(Array.from({ length: 100 }, (_, i) => 200 + i));
    expect(warnings.some((w) => w.includes('dropping the oldest queued points (more than 100); metrics.jsonl keeps every point'))).toBe(true);
  });

  it('gives up at close after its wait when the server never returns, saying how much is missing', async () => {
    const server = await fake();
    const warnings: string[] = [];
    const sink = sinkFor(server.url, warnings, { closeWaitMs: 300 });
    await sink.start('run', 'regress', {});
    server.close();
    sink.push(steps(0, 35));
    const started = Date.now();
    await sink.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(warnings.at(-1)).toMatch(/did not take the last 35 metric points \(\d+ requests\) within 0.3 s .*metrics\.jsonl has them/);
  });

  it('seals a partial batch after flushIntervalMs so a dashboard sees progress', async () => {
    const server = await fake();
    const sink = sinkFor(server.url, [], { batchSize: 1000, flushIntervalMs: 50 });
    await sink.start('run', 'regress', {});
    sink.push(steps(0, 3));
    await waitFor(() => server.stored.length === 3, 5000, 'the partial batch');
    await sink.close();
  });
});
