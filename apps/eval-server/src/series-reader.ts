/**
 * A worker thread that answers series reads (series-query.ts) on its own read-only
 * connection. In WAL mode it reads a consistent snapshot while the server's connection keeps
 * writing. It also writes the answer's JSON and hands the bytes over without a copy, so
 * neither the scan nor the serialisation of a large answer runs on the server's event loop.
 * On Linux the thread lowers its own priority: when cores are short, writes and health
 * checks go first.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { type SeriesQuery, readSeries } from './series-query.js';

export interface SeriesRequest {
  id: number;
  runId: string;
  query: SeriesQuery;
}

/** `json`: the UTF-8 bytes of `{ "series": … }`, ready to send. */
export type SeriesReply = { id: number; json: Uint8Array } | { id: number; error: string };

/** Nice 10 for this thread only (Linux schedules threads as tasks with their own priority). */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid)) setPriority(tid, 10);
  } catch {
    // not Linux, or not permitted: the same priority as the server
  }
}

if (parentPort && workerData) {
  lowerThreadPriority();
  const db = new Database((workerData as { path: string }).path, { readonly: true, fileMustExist: true });
  const port = parentPort;
  const encoder = new TextEncoder();
  port.on('message', (request: SeriesRequest) => {
    try {
      const json = encoder.encode(JSON.stringify({ series: readSeries(db, request.runId, request.query) }));
      port.postMessage({ id: request.id, json } satisfies SeriesReply, [json.buffer]);
    } catch (err) {
      port.postMessage({ id: request.id, error: (err as Error).message } satisfies SeriesReply);
    }
  });
}
