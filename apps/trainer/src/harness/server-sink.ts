/**
 * Sends a run's config and metrics to a Kiln eval server (apps/eval-server): creates the
 * run once, then appends metric points in batches. A server that is down costs a warning,
 * never the training run: the JSON-lines file on disk stays the record.
 */
export interface ServerSinkOptions {
  url: string;
  token: string | undefined;
  warn: (message: string) => void;
  /** Points buffered before a send. */
  batchSize?: number;
}

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
}

export class ServerSink {
  private runId: string | undefined;
  private buffer: MetricPoint[] = [];
  private failed = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly options: ServerSinkOptions) {}

  get id(): string | undefined {
    return this.runId;
  }

  private async request(method: string, path: string, body: unknown): Promise<unknown> {
    const res = await fetch(new URL(path, this.options.url), {
      method,
      headers: {
        'content-type': 'application/json',
        ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : {};
  }

  private fail(err: unknown): void {
    if (!this.failed) this.options.warn(`eval server ${this.options.url}: ${(err as Error).message}; metrics stay in metrics.jsonl only`);
    this.failed = true;
  }

  /** Creates the run, or adopts `existingId` when resuming. */
  async start(name: string, kind: string, config: unknown, existingId?: string): Promise<void> {
    if (existingId) {
      this.runId = existingId;
      return;
    }
    try {
      const res = (await this.request('POST', '/api/runs', { name, kind, config })) as { id: string };
      this.runId = res.id;
    } catch (err) {
      this.fail(err);
    }
  }

  push(points: MetricPoint[]): void {
    if (!this.runId || this.failed) return;
    this.buffer.push(...points);
    if (this.buffer.length >= (this.options.batchSize ?? 200)) this.flush();
  }

  /** Sends what is buffered; sends are chained so the server sees steps in order. */
  flush(): Promise<void> {
    if (!this.runId || this.failed || this.buffer.length === 0) return this.pending;
    const points = this.buffer;
    this.buffer = [];
    const runId = this.runId;
    this.pending = this.pending.then(() =>
      this.request('POST', `/api/runs/${runId}/metrics`, { points }).then(
        () => undefined,
        (err) => this.fail(err),
      ),
    );
    return this.pending;
  }

  /** Uploads a file (a segmented cloud for the dashboard's 3-D view, a checkpoint). */
  async artifact(name: string, bytes: Uint8Array): Promise<void> {
    await this.flush();
    if (!this.runId || this.failed) return;
    try {
      const res = await fetch(new URL(`/api/runs/${this.runId}/artifacts/${encodeURIComponent(name)}`, this.options.url), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}) },
        body: new Blob([new Uint8Array(bytes)]),
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok) throw new Error(`PUT artifact ${name}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Stores an evaluation result (mIoU per class, expert load, LInCo groups). */
  async result(kind: string, payload: Record<string, unknown>): Promise<void> {
    await this.flush();
    if (!this.runId || this.failed) return;
    try {
      await this.request('POST', `/api/runs/${this.runId}/results/${kind}`, payload);
    } catch (err) {
      this.fail(err);
    }
  }
}
