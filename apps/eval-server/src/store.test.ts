import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Store } from './store.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'kiln-store-')), 'kiln-eval.db');

describe('Store', () => {
  it('stores one value per step, counts per series, and ignores a batch id seen before', () => {
    const store = new Store(dbPath());
    const run = store.createRun('a', 'test', {}).run.id;
    expect(store.appendMetrics(run, [{ step: 1, name: 'loss', value: 3 }, { step: 2, name: 'loss', value: 2 }], 'b1')).toEqual({ inserted: 2, replaced: 0, duplicate: false });
    expect(store.appendMetrics(run, [{ step: 1, name: 'loss', value: 3 }, { step: 2, name: 'loss', value: 2 }], 'b1')).toEqual({ inserted: 0, replaced: 0, duplicate: true });
    expect(store.appendMetrics(run, [{ step: 2, name: 'loss', value: 1 }, { step: 3, name: 'acc', value: 0.5 }])).toEqual({ inserted: 1, replaced: 1, duplicate: false });
    expect(store.series(run)).toEqual([
      { name: 'acc', points: 1, lastStep: 3 },
      { name: 'loss', points: 2, lastStep: 2 },
    ]);
    expect(store.listRuns()[0]).toMatchObject({ metricCount: 3, lastStep: 3 });
    expect(store.db.prepare('SELECT value FROM metrics WHERE name = ? AND step = 2').get('loss')).toEqual({ value: 1 });
  });

  it('migrates a database written before series counters, batch ids and request ids, keeping the last value of duplicated steps', () => {
    const path = dbPath();
    const old = new Database(path);
    old.exec(`
      CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL);
      CREATE INDEX metrics_by_run ON metrics (run_id, name, step);
      CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), kind TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL);
      INSERT INTO runs VALUES ('run-old', 'old', 'regress', '{}', '2025-01-01T00:00:00Z');
      INSERT INTO metrics VALUES ('run-old', 1, 'loss', 1.0), ('run-old', 2, 'loss', 0.5), ('run-old', 2, 'loss', 0.25), ('run-old', 1, 'lr', 0.1);
    `);
    old.close();
    const store = new Store(path);
    expect(store.series('run-old')).toEqual([
      { name: 'loss', points: 2, lastStep: 2 },
      { name: 'lr', points: 1, lastStep: 1 },
    ]);
    expect(store.db.prepare("SELECT value FROM metrics WHERE name = 'loss' AND step = 2").all()).toEqual([{ value: 0.25 }]);
    expect(store.appendMetrics('run-old', [{ step: 3, name: 'loss', value: 0.1 }], 'x')).toMatchObject({ inserted: 1 });
    // version 2: tags and a note per run, empty for the runs from before
    expect(store.getRun('run-old')).toMatchObject({ tags: [], note: '' });
    expect(store.annotateRun('run-old', { tags: ['old'] })).toMatchObject({ tags: ['old'], note: '' });
    expect(store.db.pragma('user_version', { simple: true })).toBe(2);
    expect(store.createRun('new', 'k', {}, 'req-1').created).toBe(true);
    expect(store.createRun('new', 'k', {}, 'req-1').created).toBe(false);
    store.close();
    // opening again does not migrate twice
    const again = new Store(path);
    expect(again.countMetrics('run-old')).toBe(4);
    again.close();
  });

  it('marks jobs that were queued or running when the server stopped as failed', () => {
    const path = dbPath();
    const store = new Store(path);
    const run = store.createRun('a', 'test', {}).run.id;
    const job = store.createJob(run, 'segmentation', {});
    store.close();
    expect(new Store(path).getJob(job.id)).toMatchObject({ status: 'failed', message: 'server restarted while the job was queued or running' });
  });
});
