/**
 * The SQLite store (better-sqlite3, WAL): runs and their configs, metric series,
 * evaluation results, artifacts (metadata here, bytes in the data folder) and jobs.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

export interface RunRow {
  id: string;
  name: string;
  kind: string;
  config: unknown;
  createdAt: string;
}

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
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

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
  run_id TEXT NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, name, step);
CREATE TABLE IF NOT EXISTS results (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), kind TEXT NOT NULL,
  payload TEXT NOT NULL, created_at TEXT NOT NULL
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

export class Store {
  readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Jobs that were running when the process stopped will never finish.
    this.db.prepare(`UPDATE jobs SET status = 'failed', message = 'server restarted while the job ran' WHERE status IN ('queued', 'running')`).run();
  }

  close(): void {
    this.db.close();
  }

  createRun(name: string, kind: string, config: unknown): RunRow {
    const row: RunRow = { id: newId('run'), name, kind, config, createdAt: new Date().toISOString() };
    this.db.prepare('INSERT INTO runs (id, name, kind, config, created_at) VALUES (?, ?, ?, ?, ?)').run(row.id, name, kind, JSON.stringify(config ?? {}), row.createdAt);
    return row;
  }

  getRun(id: string): RunRow | undefined {
    const r = this.db.prepare('SELECT id, name, kind, config, created_at FROM runs WHERE id = ?').get(id) as
      | { id: string; name: string; kind: string; config: string; created_at: string }
      | undefined;
    return r && { id: r.id, name: r.name, kind: r.kind, config: JSON.parse(r.config), createdAt: r.created_at };
  }

  listRuns(): (Omit<RunRow, 'config'> & { metricCount: number; lastStep: number | null; results: number })[] {
    const rows = this.db
      .prepare(
        `SELECT r.id, r.name, r.kind, r.created_at,
           (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) AS metric_count,
           (SELECT MAX(step) FROM metrics m WHERE m.run_id = r.id) AS last_step,
           (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id) AS results
         FROM runs r ORDER BY r.created_at DESC, r.id DESC`,
      )
      .all() as { id: string; name: string; kind: string; created_at: string; metric_count: number; last_step: number | null; results: number }[];
    return rows.map((r) => ({ id: r.id, name: r.name, kind: r.kind, createdAt: r.created_at, metricCount: r.metric_count, lastStep: r.last_step, results: r.results }));
  }

  /** Appends a batch in one transaction: all points or none. */
  appendMetrics(runId: string, points: MetricPoint[]): number {
    const insert = this.db.prepare('INSERT INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)');
    const tx = this.db.transaction((batch: MetricPoint[]) => {
      for (const p of batch) insert.run(runId, p.step, p.name, p.value);
    });
    tx(points);
    return points.length;
  }

  /** Metric series by name, each sorted by step. */
  metrics(runId: string, name?: string): Record<string, { steps: number[]; values: number[] }> {
    const rows = (
      name
        ? this.db.prepare('SELECT step, name, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY name, step, rowid').all(runId, name)
        : this.db.prepare('SELECT step, name, value FROM metrics WHERE run_id = ? ORDER BY name, step, rowid').all(runId)
    ) as MetricPoint[];
    const out: Record<string, { steps: number[]; values: number[] }> = {};
    for (const r of rows) {
      let series = out[r.name];
      if (!series) {
        series = { steps: [], values: [] };
        out[r.name] = series;
      }
      series.steps.push(r.step);
      series.values.push(r.value);
    }
    return out;
  }

  countMetrics(runId: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM metrics WHERE run_id = ?').get(runId) as { n: number }).n;
  }

  addResult(runId: string, kind: string, payload: unknown): ResultRow {
    const createdAt = new Date().toISOString();
    const info = this.db.prepare('INSERT INTO results (run_id, kind, payload, created_at) VALUES (?, ?, ?, ?)').run(runId, kind, JSON.stringify(payload), createdAt);
    return { id: Number(info.lastInsertRowid), runId, kind, payload, createdAt };
  }

  results(runId: string): ResultRow[] {
    const rows = this.db.prepare('SELECT id, run_id, kind, payload, created_at FROM results WHERE run_id = ? ORDER BY id').all(runId) as {
      id: number;
      run_id: string;
      kind: string;
      payload: string;
      created_at: string;
    }[];
    return rows.map((r) => ({ id: r.id, runId: r.run_id, kind: r.kind, payload: JSON.parse(r.payload), createdAt: r.created_at }));
  }

  putArtifact(row: Omit<ArtifactRow, 'createdAt'>): ArtifactRow {
    const full = { ...row, createdAt: new Date().toISOString() };
    this.db
      .prepare('INSERT OR REPLACE INTO artifacts (run_id, name, size, sha256, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(full.runId, full.name, full.size, full.sha256, full.createdAt);
    return full;
  }

  artifacts(runId: string): ArtifactRow[] {
    return (
      this.db.prepare('SELECT run_id, name, size, sha256, created_at FROM artifacts WHERE run_id = ? ORDER BY name').all(runId) as {
        run_id: string;
        name: string;
        size: number;
        sha256: string;
        created_at: string;
      }[]
    ).map((r) => ({ runId: r.run_id, name: r.name, size: r.size, sha256: r.sha256, createdAt: r.created_at }));
  }

  getArtifact(runId: string, name: string): ArtifactRow | undefined {
    return this.artifacts(runId).find((a) => a.name === name);
  }

  createJob(runId: string, kind: string, spec: unknown): JobRow {
    const now = new Date().toISOString();
    const row: JobRow = { id: newId('job'), runId, kind, spec, status: 'queued', progress: 0, message: 'queued', result: null, createdAt: now, updatedAt: now };
    this.db
      .prepare('INSERT INTO jobs (id, run_id, kind, spec, status, progress, message, result, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)')
      .run(row.id, runId, kind, JSON.stringify(spec), row.status, 0, row.message, now, now);
    return row;
  }

  updateJob(id: string, patch: { status?: JobStatus; progress?: number; message?: string; result?: unknown }): void {
    const job = this.getJob(id);
    if (!job) return;
    const next = { ...job, ...patch };
    this.db
      .prepare('UPDATE jobs SET status = ?, progress = ?, message = ?, result = ?, updated_at = ? WHERE id = ?')
      .run(next.status, next.progress, next.message, next.result === null || next.result === undefined ? null : JSON.stringify(next.result), new Date().toISOString(), id);
  }

  getJob(id: string): JobRow | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && this.toJob(r);
  }

  jobs(runId?: string): JobRow[] {
    const rows = (runId ? this.db.prepare('SELECT * FROM jobs WHERE run_id = ? ORDER BY created_at').all(runId) : this.db.prepare('SELECT * FROM jobs ORDER BY created_at').all()) as Record<string, unknown>[];
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
