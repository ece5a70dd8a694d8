/**
 * Sends a run's config, metrics, results and artifacts to a Kiln eval server
 * (apps/eval-server) and does not give up while the run lasts.
 *
 * Everything goes through one ordered queue that a single sender drains. A send that fails
 * for a reason that may pass (the server is down or restarting, a timeout, 5xx, 429) is
 * retried with exponential backoff (from `retryBaseMs`, doubling to `retryMaxMs`, with
 * jitter) until it succeeds; what piled up meanwhile is backfilled, in order, once the
 * server answers again. Every request carries an id the server remembers (metrics: a
 * `batchId`; creating the run or a result: a `requestId`), so a request retried after its
 * answer was lost is stored once.
 *
 * A refusal that will not pass ends the sink with one warning: a wrong token (401/403) or
 * a run the server no longer has (404). A request the server finds malformed (400, 413,
 * 415) is dropped with a warning and the rest continue. The queue holds at most
 * `maxQueuedPoints` metric points; past that the oldest batches are dropped (with a warning:
 * metrics.jsonl keeps every point). `close` waits up to `closeWaitMs` for the queue to
 * drain and says how much was not delivered.
 */
import { randomBytes } from 'node:crypto';

export interface ServerSinkOptions {
  url: string;
  token: string | undefined;
  warn: (message: string) => void;
  /** Points buffered before they are sealed into a batch (default 200). */
  batchSize?: number;
  /** A partial batch is sealed after this long (default 2 s), so a dashboard sees progress. */
  flushIntervalMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Per-request timeout (default 10 s; artifacts 60 s). */
  requestTimeoutMs?: number;
  maxQueuedPoints?: number;
  /** How long `close` waits for the queue to drain (default 60 s). */
  closeWaitMs?: number;
  /** Called with each batch the server acknowledged (a soak test checks them afterwards). */
  onDelivered?: (points: readonly MetricPoint[]) => void;
}

/** The server's limit of points per metrics request. */
const MAX_BATCH = 10_000;

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
  /** Which series of the metric (`panel=groups`, `rank=3`): the dashboard draws one line per key. */
  key?: string;
  /** When it was logged, ms since 1970: a point backfilled after an outage keeps its time. */
  time?: number;
}

/** The server refused the token: the run cannot be reported with it. */
export class SinkAuthError extends Error {
  override name = 'SinkAuthError';
}

type Item =
  | { kind: 'run'; body: { name: string; kind: string; config: unknown; requestId: string } }
  | { kind: 'metrics'; points: MetricPoint[]; batchId: string }
  | { kind: 'result'; resultKind: string; body: Record<string, unknown> }
  | { kind: 'artifact'; name: string; bytes: Uint8Array };

/** What became of one attempt at sending an item. */
type Outcome = { ok: true; body: unknown } | { ok: false; retry: boolean; status?: number; message: string };

class Stopped extends Error {}

export class ServerSink {
  private runId: string | undefined;
  private buffer: MetricPoint[] = [];
  private readonly queue: Item[] = [];
  private queuedPoints = 0;
  private sent = 0;
  private dropped = 0;
  private seq = 0;
  private readonly session = randomBytes(6).toString('hex');
  private sender: Promise<void> | undefined;
  private stopped = false;
  private outage: { since: number; reason: string } | undefined;
  private wake: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Aborts the request in flight when `close` gives up. */
  private readonly abort = new AbortController();
  private readonly o: Required<Omit<ServerSinkOptions, 'token' | 'onDelivered'>> & Pick<ServerSinkOptions, 'token' | 'onDelivered'>;

  constructor(options: ServerSinkOptions) {
    this.o = {
      batchSize: 200,
      flushIntervalMs: 2000,
      retryBaseMs: 250,
      retryMaxMs: 30_000,
      requestTimeoutMs: 10_000,
      maxQueuedPoints: 1_000_000,
      closeWaitMs: 60_000,
      ...options,
    };
  }

  /** The run's id on the server (undefined until it has been created). */
  get id(): string | undefined {
    return this.runId;
  }

  /** Metric points not yet acknowledged by the server (queued or buffered). */
  get pending(): number {
    return this.queuedPoints + this.buffer.length;
  }

  /** Metric points the server acknowledged. */
  get delivered(): number {
    return this.sent;
  }

  /**
   * Creates the run (or adopts `existingId` when resuming). The first attempt is awaited: a
   * refused token throws SinkAuthError, so a run never trains for hours reporting nothing;
   * an unreachable server costs a warning and the run is created when it answers.
   */
  async start(name: string, kind: string, config: unknown, existingId?: string): Promise<void> {
    if (existingId) {
      this.runId = existingId;
      return;
    }
    const item: Item = { kind: 'run', body: { name, kind, config, requestId: `${this.session}:run` } };
    const first = await this.attempt(item);
    if (first.ok) {
      this.runId = (first.body as { id: string }).id;
      return;
    }
    if (first.status === 401 || first.status === 403) {
      this.stopped = true;
      throw new SinkAuthError(`the eval server at ${this.o.url} refused the token (HTTP ${first.status}): give the server's token with --token or KILN_EVAL_TOKEN`);
    }
    if (!first.retry) {
      this.stopped = true;
      this.o.warn(`eval server ${this.o.url}: creating the run failed (${first.message}); metrics stay in metrics.jsonl only`);
      return;
    }
    this.noteOutage(first.message);
    this.enqueue(item);
  }

  push(points: MetricPoint[]): void {
    if (this.stopped || points.length === 0) return;
    this.buffer.push(...points);
    if (this.buffer.length >= this.o.batchSize) this.seal();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.seal();
      }, this.o.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  /** Seals what is buffered into a batch for sending now (without waiting for it). */
  flush(): void {
    this.seal();
  }

  /** Stores an evaluation result (mIoU per class, expert load, LInCo groups). */
  async result(kind: string, payload: Record<string, unknown>): Promise<void> {
    this.seal();
    this.enqueue({ kind: 'result', resultKind: kind, body: { ...payload, requestId: `${this.session}:result:${this.seq++}` } });
  }

  /** Uploads a file (a segmented cloud for the 3-D view, a checkpoint). */
  async artifact(name: string, bytes: Uint8Array): Promise<void> {
    this.seal();
    this.enqueue({ kind: 'artifact', name, bytes });
  }

  /**
   * Waits up to `waitMs` (default `closeWaitMs`) for everything queued to reach the server,
   * then stops; a warning says how many points were not delivered.
   */
  async close(waitMs = this.o.closeWaitMs): Promise<void> {
    this.seal();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const sender = this.sender;
    if (sender) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([sender.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), waitMs)))]);
      clearTimeout(timer);
      if (timedOut) {
        const points = this.pending;
        this.stopped = true;
        this.wake?.();
        this.abort.abort();
        this.o.warn(
          `eval server ${this.o.url} did not take the last ${points} metric points${this.queue.length > 0 ? ` (${this.queue.length} requests)` : ''} within ${Number((waitMs / 1000).toPrecision(3))} s (${this.outage?.reason ?? 'still sending'}); metrics.jsonl has them`,
        );
        await sender;
      }
    }
    this.stopped = true;
  }

  private seal(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.stopped || this.buffer.length === 0) return;
    const points = this.buffer;
    this.buffer = [];
    const size = Math.min(this.o.batchSize, MAX_BATCH);
    for (let i = 0; i < points.length; i += size) {
      this.enqueue({ kind: 'metrics', points: points.slice(i, i + size), batchId: `${this.session}:${this.seq++}` });
    }
  }

  private enqueue(item: Item): void {
    if (this.stopped) return;
    this.queue.push(item);
    if (item.kind === 'metrics') {
      this.queuedPoints += item.points.length;
      this.shed();
    }
    this.sender ??= this.drain().finally(() => {
      this.sender = undefined;
    });
  }

  /** Drops the oldest metric batches beyond maxQueuedPoints (never the run, results or artifacts). */
  private shed(): void {
    let shed = 0;
    while (this.queuedPoints > this.o.maxQueuedPoints) {
      const i = this.queue.findIndex((q) => q.kind === 'metrics');
      if (i < 0) break;
      const [gone] = this.queue.splice(i, 1) as [Extract<Item, { kind: 'metrics' }>];
      this.queuedPoints -= gone.points.length;
      shed += gone.points.length;
    }
    if (shed > 0) {
      if (this.dropped === 0) this.o.warn(`eval server ${this.o.url} has been unreachable for long: dropping the oldest queued points (more than ${this.o.maxQueuedPoints}); metrics.jsonl keeps every point`);
      this.dropped += shed;
    }
  }

  private async drain(): Promise<void> {
    let delay = this.o.retryBaseMs;
    while (this.queue.length > 0 && !this.stopped) {
      const item = this.queue[0]!;
      if (item.kind !== 'run' && !this.runId) {
        // The run is not created yet (its request is first in line); nothing to attach to.
        this.stopped = true;
        break;
      }
      const outcome = await this.attempt(item);
      if (outcome.ok) {
        this.queue.shift();
        if (item.kind === 'run') this.runId = (outcome.body as { id: string }).id;
        if (item.kind === 'metrics') {
          this.queuedPoints -= item.points.length;
          this.sent += item.points.length;
          this.o.onDelivered?.(item.points);
        }
        if (this.outage) {
          this.o.warn(`eval server ${this.o.url} answers again after ${((Date.now() - this.outage.since) / 1000).toFixed(1)} s; sending what was queued`);
          this.outage = undefined;
        }
        delay = this.o.retryBaseMs;
        continue;
      }
      if (outcome.retry) {
        this.noteOutage(outcome.message);
        try {
          await this.sleep(delay * (0.8 + 0.4 * Math.random()));
        } catch (err) {
          if (err instanceof Stopped) break;
          throw err;
        }
        delay = Math.min(this.o.retryMaxMs, delay * 2);
        continue;
      }
      if (outcome.status === 401 || outcome.status === 403 || outcome.status === 404) {
        const why = outcome.status === 404 ? `no longer has run ${this.runId}` : `refused the token (HTTP ${outcome.status})`;
        this.o.warn(`eval server ${this.o.url} ${why}; ${this.pending} metric points not sent; metrics.jsonl has them`);
        this.stopped = true;
        break;
      }
      // Malformed in the server's eyes: this item can never succeed; the others may.
      this.queue.shift();
      if (item.kind === 'metrics') this.queuedPoints -= item.points.length;
      this.o.warn(`eval server ${this.o.url} refused ${describe(item)}: ${outcome.message}`);
    }
  }

  private noteOutage(reason: string): void {
    if (!this.outage) {
      this.outage = { since: Date.now(), reason };
      this.o.warn(`eval server ${this.o.url}: ${reason}; retrying in the background (metrics keep queueing)`);
    } else {
      this.outage.reason = reason;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        reject(new Stopped());
      };
    });
  }

  private async attempt(item: Item): Promise<Outcome> {
    const auth: Record<string, string> = this.o.token ? { authorization: `Bearer ${this.o.token}` } : {};
    let path: string;
    let init: RequestInit;
    switch (item.kind) {
      case 'run':
        path = '/api/runs';
        init = { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(item.body) };
        break;
      case 'metrics':
        path = `/api/runs/${this.runId}/metrics`;
        init = { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ batchId: item.batchId, points: item.points }) };
        break;
      case 'result':
        path = `/api/runs/${this.runId}/results/${item.resultKind}`;
        init = { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(item.body) };
        break;
      case 'artifact':
        path = `/api/runs/${this.runId}/artifacts/${encodeURIComponent(item.name)}`;
        init = { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: new Blob([new Uint8Array(item.bytes)]) };
        break;
    }
    const timeout = item.kind === 'artifact' ? Math.max(60_000, this.o.requestTimeoutMs) : this.o.requestTimeoutMs;
    try {
      const res = await fetch(new URL(path, this.o.url), { ...init, signal: AbortSignal.any([AbortSignal.timeout(timeout), this.abort.signal]) });
      const text = await res.text();
      if (res.ok) return { ok: true, body: text ? JSON.parse(text) : {} };
      const message = `HTTP ${res.status} ${text.slice(0, 200)}`;
      const retry = res.status >= 500 || res.status === 429 || res.status === 408;
      return { ok: false, retry, status: res.status, message };
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') return { ok: false, retry: true, message: `no answer within ${timeout / 1000} s` };
      return { ok: false, retry: true, message: `unreachable (${networkCause(err)})` };
    }
  }
}

function describe(item: Item): string {
  switch (item.kind) {
    case 'run':
      return 'creating the run';
    case 'metrics':
      return `a batch of ${item.points.length} metric points (steps ${item.points[0]!.step}..${item.points.at(-1)!.step})`;
    case 'result':
      return `a '${item.resultKind}' result`;
    case 'artifact':
      return `artifact '${item.name}'`;
  }
}

/** The system error under fetch's "fetch failed" (ECONNREFUSED, ECONNRESET, ENOTFOUND, ...). */
function networkCause(err: unknown): string {
  let e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] } | undefined;
  let message = (err as Error).message;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && e.code.startsWith('E')) return e.code;
    if (e.message) message = e.message;
    e = (e.cause ?? e.errors?.[0]) as typeof e;
  }
  return message;
}
