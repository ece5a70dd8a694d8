/**
 * A worker thread that answers series reads (series-query.ts) on its own read-only
 * connection. In WAL mode it reads a consistent snapshot while the server's connection keeps
 * writing, and a long scan here never holds up the server's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { type SeriesPage, type SeriesQuery, readSeries } from './series-query.js';

export interface SeriesRequest {
  id: number;
  runId: string;
  query: SeriesQuery;
}

export type SeriesReply = { id: number; series: Record<string, SeriesPage> } | { id: number; error: string };

if (parentPort && workerData) {
  const db = new Database((workerData as { path: string }).path, { readonly: true, fileMustExist: true });
  const port = parentPort;
  port.on('message', (request: SeriesRequest) => {
    let reply: SeriesReply;
    try {
      reply = { id: request.id, series: readSeries(db, request.runId, request.query) };
    } catch (err) {
      reply = { id: request.id, error: (err as Error).message };
    }
    port.postMessage(reply);
  });
}
