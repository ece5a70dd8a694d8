/**
 * A worker thread that answers series reads (series-query.ts) on its own read-only
 * connection. In WAL mode it reads a consistent snapshot while the server's connection keeps
 * writing. It also writes the answer's JSON and hands the bytes over without a copy, so
 * neither the scan nor the serialisation of a large answer runs on the server's event loop.
 * On Linux the thread lowers its own priority: when cores are short, writes and health
 * checks go first.
 *
 * The pool's first reader also checkpoints the WAL every second (the server's own
 * connection does not, so that no commit on the event loop waits for a checkpoint's copy
 * and fsync). A passive checkpoint never blocks the writer; it copies what no reader still
 * needs.
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

export interface SeriesReaderData {
  path: string;
  /** This reader also checkpoints the WAL (one per pool). */
  checkpoints: boolean;
}

export const CHECKPOINT_EVERY_MS = 1000;

if (parentPort && workerData) {
  lowerThreadPriority();
  const { path, checkpoints } = workerData as SeriesReaderData;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  if (checkpoints) {
    const writer = new Database(path, { fileMustExist: true });
    setInterval(() => {
      try {
        writer.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // busy or closing: the next tick tries again
      }
    }, CHECKPOINT_EVERY_MS).unref();
  }
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
