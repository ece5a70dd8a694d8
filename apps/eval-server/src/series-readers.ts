/**
 * A small pool of worker threads for series reads (series-reader.ts). Requests wait in a
 * bounded queue; past it a read is refused with 503 rather than piling up. A worker that
 * dies fails its request and is replaced. The first worker also checkpoints the WAL.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SeriesReaderData, SeriesReply, SeriesRequest } from './series-reader.js';
import type { SeriesQuery } from './series-query.js';

export class ReadersBusyError extends Error {
  readonly statusCode = 503;
}

interface Pending {
  request: SeriesRequest;
  resolve: (json: Uint8Array) => void;
  reject: (err: Error) => void;
}

function readerScript(): string {
  // Run from source (tests import src/*.ts in process): a worker thread needs the built script.
  if (import.meta.url.endsWith('.ts')) return fileURLToPath(new URL('../dist/series-reader.js', import.meta.url));
  const ext = import.meta.url.endsWith('.cjs') ? '.cjs' : '.js';
  return fileURLToPath(new URL(`./series-reader${ext}`, import.meta.url));
}

export class SeriesReaders {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly waiting: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly databasePath: string,
    size = 2,
    private readonly maxWaiting = 64,
  ) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn(i === 0));
  }

  /** `checkpoints`: this reader also checkpoints the WAL (see series-reader.ts). */
  private spawn(checkpoints: boolean): Worker {
    const worker = new Worker(readerScript(), { workerData: { path: this.databasePath, checkpoints } satisfies SeriesReaderData });
    worker.on('message', (reply: SeriesReply) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      if (pending) {
        if ('error' in reply) pending.reject(new Error(`reading series failed: ${reply.error}`));
        else pending.resolve(reply.json);
      }
      this.release(worker);
    });
    const fail = (err: Error) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      pending?.reject(new Error(`the series reader stopped: ${err.message}`));
      if (!this.closed) this.release(this.spawn(checkpoints));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed && (this.busy.has(worker) || this.idle.includes(worker))) fail(new Error(`exit code ${code}`));
    });
    return worker;
  }

  private release(worker: Worker): void {
    const next = this.waiting.shift();
    if (next) {
      this.busy.set(worker, next);
      worker.postMessage(next.request);
    } else {
      this.idle.push(worker);
    }
  }

  /** The JSON answer `{ "series": … }` of a series read, as bytes. */
  read(runId: string, query: SeriesQuery): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('the server is stopping'));
    return new Promise((resolve, reject) => {
      const pending: Pending = { request: { id: this.nextId++, runId, query }, resolve, reject };
      const worker = this.idle.pop();
      if (worker) {
        this.busy.set(worker, pending);
        worker.postMessage(pending.request);
      } else if (this.waiting.length >= this.maxWaiting) {
        reject(new ReadersBusyError(`${this.waiting.length} series reads are waiting; try again shortly`));
      } else {
        this.waiting.push(pending);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.waiting.splice(0)) p.reject(new Error('the server is stopping'));
    for (const p of this.busy.values()) p.reject(new Error('the server is stopping'));
    const all = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    this.busy.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
