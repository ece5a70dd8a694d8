/**
 * The SQLite store (better-sqlite3, WAL): runs and their configs, metric series,
 * evaluation results, artifacts (metadata here, bytes in the data folder) and jobs.
 *
 * This connection does every write and the small indexed reads. Reads that scan a metric
 * series run on separate read-only connections in worker threads (series-reader.ts), so
 * they never hold up a write or a health check.
 *
 * A metric series holds one value per step: writing a step again replaces its value (a
 * resumed run replays the steps after its last checkpoint). A metrics batch may carry a
 * `batchId`; a batch id seen before for the run is acknowledged without storing anything,
 * so a client that retries after a lost answer stores its batch once.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

export interface RunRow {
  id: string;
  name: string;
  kind: string;
  config: unknown;
  createdAt: string;
  /** Labels a researcher gives the run (filters in the dashboard). */
  tags: string[];
  /** Free text about the run. */
  note: string;
}

export interface RunSummary extends RunRow {
  metricCount: number;
  lastStep: number | null;
  results: number;
}

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
  /** When the point was logged, in ms since 1970 (the dashboard's wall-time axis). */
  time?: number | undefined;
}

export interface ResultRow {
  id: number;
  runId: string;
  kind: string;
  payload: unknown;
  createdAt: string;
}

export interface ArtifactRow {
  runId: string;
  name: string;
  size: number;
  sha256: string;
  createdAt: string;
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface JobRow {
  id: string;
  runId: string;
  kind: string;
  spec: unknown;
  status: JobStatus;
  progress: number;
  message: string;
  result: unknown;
  createdAt: string;
  updatedAt: string;
}

export interface AppendOutcome {
  /** Points that were new steps of their series. */
  inserted: number;
  /** Points that replaced the value of a step already stored. */
  replaced: number;
  /** The batch id had been stored before: nothing was written. */
  duplicate: boolean;
}

/** A row of the runs table as SQLite returns it. */
interface RunRecord {
  id: string;
  name: string;
  kind: string;
  config: string;
  created_at: string;
  tags: string;
  note: string;
}

function runRow(r: RunRecord): RunRow {
  return { id: r.id, name: r.name, kind: r.kind, config: JSON.parse(r.config), createdAt: r.created_at, tags: JSON.parse(r.tags), note: r.note };
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * The schema, version 1. A metric point is keyed by (run, series, step) in a WITHOUT ROWID
 * table, so a series is stored contiguously with its values: reading or reducing one is a
 * sequential scan, not a lookup per point. `series` keeps each series' point count and last
 * step, so listing runs never counts rows.
 */
const SCHEMA = `
CREATE TABLE runs (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL,
  request_id TEXT, tags TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX runs_by_request ON runs (request_id) WHERE request_id IS NOT NULL;
CREATE TABLE metrics (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL,
  time REAL,
  PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
CREATE TABLE series (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, points INTEGER NOT NULL, last_step INTEGER NOT NULL,
  PRIMARY KEY (run_id, name)
);
CREATE TABLE metric_batches (
  run_id TEXT NOT NULL REFERENCES runs(id), batch_id TEXT NOT NULL, points INTEGER NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, batch_id)
);
CREATE TABLE results (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), kind TEXT NOT NULL,
  payload TEXT NOT NULL, created_at TEXT NOT NULL, request_id TEXT
);
CREATE UNIQUE INDEX results_by_request ON results (run_id, request_id) WHERE request_id IS NOT NULL;
CREATE TABLE artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (run_id, name)
);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), kind TEXT NOT NULL, spec TEXT NOT NULL,
  status TEXT NOT NULL, progress REAL NOT NULL, message TEXT NOT NULL, result TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
`;

/**
 * A version-0 database (a metrics row per write, rows counted on every listing) to version
 * 1: duplicated steps keep their last value, the counters are computed once, and the tables
 * version 1 added are created.
 */
const MIGRATE_0_TO_1 = `
ALTER TABLE runs ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX runs_by_request ON runs (request_id) WHERE request_id IS NOT NULL;
ALTER TABLE results ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX results_by_request ON results (run_id, request_id) WHERE request_id IS NOT NULL;
CREATE TABLE metrics_v1 (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
INSERT OR REPLACE INTO metrics_v1 (run_id, name, step, value) SELECT run_id, name, step, value FROM metrics ORDER BY rowid;
DROP TABLE metrics;
ALTER TABLE metrics_v1 RENAME TO metrics;
CREATE TABLE series (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, points INTEGER NOT NULL, last_step INTEGER NOT NULL,
  PRIMARY KEY (run_id, name)
);
INSERT INTO series (run_id, name, points, last_step) SELECT run_id, name, COUNT(*), MAX(step) FROM metrics GROUP BY run_id, name;
CREATE TABLE metric_batches (
  run_id TEXT NOT NULL REFERENCES runs(id), batch_id TEXT NOT NULL, points INTEGER NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, batch_id)
);
CREATE TABLE IF NOT EXISTS artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), kind TEXT NOT NULL, spec TEXT NOT NULL,
  status TEXT NOT NULL, progress REAL NOT NULL, message TEXT NOT NULL, result TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
`;

/** Version 1 to 2: tags and a note per run, the wall time of each metric point (null before). */
const MIGRATE_1_TO_2 = `
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE metrics ADD COLUMN time REAL;
`;

const SCHEMA_VERSION = 2;

export class Store {
  readonly db: Database.Database;
  /** Prepared statements by SQL text: preparing costs more than running most of them. */
  private readonly statements = new Map<string, Database.Statement>();

  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /**
   * Opens (or creates) the database. A new file is created with mode 0600 first: SQLite
   * gives its -wal and -shm files the database file's permissions.
   */
  constructor(readonly path: string) {
    closeSync(openSync(path, 'a', 0o600));
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Checkpoints (copying the WAL into the database, with an fsync) would run inside a
    // commit on this connection, i.e. on the server's event loop. A reader thread runs them
    // instead (series-reader.ts); a WAL that was checkpointed is cut back to 64 MiB.
    this.db.pragma('wal_autocheckpoint = 0');
    this.db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    this.db.pragma('foreign_keys = ON');
    this.db.transaction(() => {
      const fresh = this.sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get() === undefined;
      const version = fresh ? SCHEMA_VERSION : (this.db.pragma('user_version', { simple: true }) as number);
      if (fresh) this.db.exec(SCHEMA);
      if (version < 1) this.db.exec(MIGRATE_0_TO_1);
      if (version < 2) this.db.exec(MIGRATE_1_TO_2);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    // Jobs that were queued or running when the process stopped will never finish.
    this.sql(`UPDATE jobs SET status = 'failed', message = 'server restarted while the job was queued or running' WHERE status IN ('queued', 'running')`).run();
  }

  close(): void {
    this.db.close();
  }

  /**
   * Creates a run. With a `requestId` that created a run before, answers that run instead
   * (`created` false): a client retrying after a lost answer gets one run, not two.
   */
  createRun(name: string, kind: string, config: unknown, requestId?: string): { run: RunRow; created: boolean } {
    if (requestId !== undefined) {
      const id = (this.sql('SELECT id FROM runs WHERE request_id = ?').get(requestId) as { id: string } | undefined)?.id;
      if (id) return { run: this.getRun(id)!, created: false };
    }
    const run: RunRow = { id: newId('run'), name, kind, config: config ?? {}, createdAt: new Date().toISOString(), tags: [], note: '' };
    this.sql('INSERT INTO runs (id, name, kind, config, created_at, request_id) VALUES (?, ?, ?, ?, ?, ?)')
      .run(run.id, name, kind, JSON.stringify(run.config), run.createdAt, requestId ?? null);
    return { run, created: true };
  }

  hasRun(id: string): boolean {
    return this.sql('SELECT 1 FROM runs WHERE id = ?').get(id) !== undefined;
  }

  getRun(id: string): RunRow | undefined {
    const r = this.sql('SELECT id, name, kind, config, created_at, tags, note FROM runs WHERE id = ?').get(id) as RunRecord | undefined;
    return r && runRow(r);
  }

  /** Replaces the run's tags and/or note (what is not given stays); undefined for an unknown run. */
  annotateRun(id: string, change: { tags?: string[]; note?: string }): RunRow | undefined {
    const run = this.getRun(id);
    if (!run) return undefined;
    const tags = change.tags ?? run.tags;
    const note = change.note ?? run.note;
    this.sql('UPDATE runs SET tags = ?, note = ? WHERE id = ?').run(JSON.stringify(tags), note, id);
    return { ...run, tags, note };
  }

  /** Every run, newest first, with its config, tags and note, point count and last step (from the per-series counters). */
  listRuns(): RunSummary[] {
    const rows = this.sql(
        `SELECT r.id, r.name, r.kind, r.config, r.created_at, r.tags, r.note,
           (SELECT COALESCE(SUM(points), 0) FROM series s WHERE s.run_id = r.id) AS metric_count,
           (SELECT MAX(last_step) FROM series s WHERE s.run_id = r.id) AS last_step,
           (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id) AS results
         FROM runs r ORDER BY r.created_at DESC, r.id DESC`,
      )
      .all() as (RunRecord & { metric_count: number; last_step: number | null; results: number })[];
    return rows.map((r) => ({ ...runRow(r), metricCount: r.metric_count, lastStep: r.last_step, results: r.results }));
  }

  /** Appends a batch in one transaction: all points or none (see the class comment for ids). */
  appendMetrics(runId: string, points: MetricPoint[], batchId?: string): AppendOutcome {
    const insert = this.sql('INSERT OR IGNORE INTO metrics (run_id, step, name, value, time) VALUES (?, ?, ?, ?, ?)');
    const replace = this.sql('UPDATE metrics SET value = ?, time = ? WHERE run_id = ? AND name = ? AND step = ?');
    const now = Date.now();
    const seenBatch = this.sql('INSERT OR IGNORE INTO metric_batches (run_id, batch_id, points, created_at) VALUES (?, ?, ?, ?)');
    const bump = this.sql(
      `INSERT INTO series (run_id, name, points, last_step) VALUES (?, ?, ?, ?)
       ON CONFLICT (run_id, name) DO UPDATE SET points = points + excluded.points, last_step = MAX(last_step, excluded.last_step)`,
    );
    return this.db.transaction((): AppendOutcome => {
      if (batchId !== undefined && seenBatch.run(runId, batchId, points.length, new Date().toISOString()).changes === 0) {
        return { inserted: 0, replaced: 0, duplicate: true };
      }
      const perSeries = new Map<string, { added: number; last: number }>();
      let inserted = 0;
      let replaced = 0;
      for (const p of points) {
        let s = perSeries.get(p.name);
        if (!s) {
          s = { added: 0, last: p.step };
          perSeries.set(p.name, s);
        }
        s.last = Math.max(s.last, p.step);
        // A point without its own time gets the time it arrived.
        const time = p.time ?? now;
        if (insert.run(runId, p.step, p.name, p.value, time).changes === 1) {
          s.added++;
          inserted++;
        } else {
          replace.run(p.value, time, runId, p.name, p.step);
          replaced++;
        }
      }
      for (const [name, s] of perSeries) bump.run(runId, name, s.added, s.last);
      return { inserted, replaced, duplicate: false };
    })();
  }

  countMetrics(runId: string): number {
    return (this.sql('SELECT COALESCE(SUM(points), 0) AS n FROM series WHERE run_id = ?').get(runId) as { n: number }).n;
  }

  /** The run's series: name, point count and last step. */
  series(runId: string): { name: string; points: number; lastStep: number }[] {
    return (this.sql('SELECT name, points, last_step FROM series WHERE run_id = ? ORDER BY name').all(runId) as { name: string; points: number; last_step: number }[]).map(
      (s) => ({ name: s.name, points: s.points, lastStep: s.last_step }),
    );
  }

  /** Stores a result; a `requestId` stored before for the run answers the earlier row. */
  addResult(runId: string, kind: string, payload: unknown, requestId?: string): { row: ResultRow; created: boolean } {
    if (requestId !== undefined) {
      const earlier = this.results(runId, requestId)[0];
      if (earlier) return { row: earlier, created: false };
    }
    const createdAt = new Date().toISOString();
    const info = this.sql('INSERT INTO results (run_id, kind, payload, created_at, request_id) VALUES (?, ?, ?, ?, ?)')
      .run(runId, kind, JSON.stringify(payload), createdAt, requestId ?? null);
    return { row: { id: Number(info.lastInsertRowid), runId, kind, payload, createdAt }, created: true };
  }

  results(runId: string, requestId?: string): ResultRow[] {
    const rows = (
      requestId === undefined
        ? this.sql('SELECT id, run_id, kind, payload, created_at FROM results WHERE run_id = ? ORDER BY id').all(runId)
        : this.sql('SELECT id, run_id, kind, payload, created_at FROM results WHERE run_id = ? AND request_id = ?').all(runId, requestId)
    ) as { id: number; run_id: string; kind: string; payload: string; created_at: string }[];
    return rows.map((r) => ({ id: r.id, runId: r.run_id, kind: r.kind, payload: JSON.parse(r.payload), createdAt: r.created_at }));
  }

  putArtifact(row: Omit<ArtifactRow, 'createdAt'>): ArtifactRow {
    const full = { ...row, createdAt: new Date().toISOString() };
    this.sql('INSERT OR REPLACE INTO artifacts (run_id, name, size, sha256, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(full.runId, full.name, full.size, full.sha256, full.createdAt);
    return full;
  }

  artifacts(runId: string): ArtifactRow[] {
    return (
      this.sql('SELECT run_id, name, size, sha256, created_at FROM artifacts WHERE run_id = ? ORDER BY name').all(runId) as {
        run_id: string;
        name: string;
        size: number;
        sha256: string;
        created_at: string;
      }[]
    ).map((r) => ({ runId: r.run_id, name: r.name, size: r.size, sha256: r.sha256, createdAt: r.created_at }));
  }

  getArtifact(runId: string, name: string): ArtifactRow | undefined {
    const r = this.sql('SELECT run_id, name, size, sha256, created_at FROM artifacts WHERE run_id = ? AND name = ?').get(runId, name) as
      | { run_id: string; name: string; size: number; sha256: string; created_at: string }
      | undefined;
    return r && { runId: r.run_id, name: r.name, size: r.size, sha256: r.sha256, createdAt: r.created_at };
  }

  createJob(runId: string, kind: string, spec: unknown): JobRow {
    const now = new Date().toISOString();
    const row: JobRow = { id: newId('job'), runId, kind, spec, status: 'queued', progress: 0, message: 'queued', result: null, createdAt: now, updatedAt: now };
    this.sql('INSERT INTO jobs (id, run_id, kind, spec, status, progress, message, result, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)')
      .run(row.id, runId, kind, JSON.stringify(spec), row.status, 0, row.message, now, now);
    return row;
  }

  updateJob(id: string, patch: { status?: JobStatus; progress?: number; message?: string; result?: unknown }): void {
    const job = this.getJob(id);
    if (!job) return;
    const next = { ...job, ...patch };
    this.sql('UPDATE jobs SET status = ?, progress = ?, message = ?, result = ?, updated_at = ? WHERE id = ?')
      .run(next.status, next.progress, next.message, next.result === null || next.result === undefined ? null : JSON.stringify(next.result), new Date().toISOString(), id);
  }

  getJob(id: string): JobRow | undefined {
    const r = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && this.toJob(r);
  }

  jobs(runId?: string): JobRow[] {
    const rows = (runId ? this.sql('SELECT * FROM jobs WHERE run_id = ? ORDER BY created_at').all(runId) : this.sql('SELECT * FROM jobs ORDER BY created_at').all()) as Record<string, unknown>[];
    return rows.map((r) => this.toJob(r));
  }

  private toJob(r: Record<string, unknown>): JobRow {
    return {
      id: r.id as string,
      runId: r.run_id as string,
      kind: r.kind as string,
      spec: JSON.parse(r.spec as string),
      status: r.status as JobStatus,
      progress: r.progress as number,
      message: r.message as string,
      result: r.result ? JSON.parse(r.result as string) : null,
      createdAt: r.created_at as string,
      updatedAt: r.updated_at as string,
    };
  }
}
