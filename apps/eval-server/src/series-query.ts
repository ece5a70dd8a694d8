/**
 * Bounded reads of metric series: a page of points after a step (`after`, `limit`), or the
 * range reduced to at most `maxPoints` points (`maxPoints`): the first and the last point,
 * and the minimum and the maximum of each of ⌊(maxPoints − 4) / 2⌋ buckets of equal step
 * width, in step order — spikes survive, the global extremes always do, and a chart drawn
 * from the reduction has the same envelope as one drawn from every point. SQLite does the
 * bucketing (one scan each for minima and maxima). These run on read-only connections in
 * worker threads (series-readers.ts); they take a database handle so tests can call them
 * directly.
 */
import type Database from 'better-sqlite3';

export const DEFAULT_PAGE = 10_000;
export const MAX_PAGE = 100_000;

export interface SeriesQuery {
  /** One series, or every series of the run. */
  name?: string | undefined;
  /** Only steps greater than this. */
  after?: number | undefined;
  /** Points per series in a page (default DEFAULT_PAGE). */
  limit?: number | undefined;
  /** Reduce the range to at most this many points instead of paging. */
  maxPoints?: number | undefined;
}

export interface SeriesPage {
  steps: number[];
  values: number[];
  /** When each point was logged (ms since 1970); null for points stored before times were kept. */
  times: (number | null)[];
  /** Pass as `after` for the next page; null when this page reaches the end. */
  next: number | null;
  /** Points the series holds in all. */
  total: number;
  /** True when the points are a min/max reduction of the range. */
  downsampled: boolean;
}

/** The series of a run that the query asks for, with their point counts. */
function seriesOf(db: Database.Database, runId: string, name: string | undefined): { name: string; points: number }[] {
  return name === undefined
    ? (db.prepare('SELECT name, points FROM series WHERE run_id = ? ORDER BY name').all(runId) as { name: string; points: number }[])
    : (db.prepare('SELECT name, points FROM series WHERE run_id = ? AND name = ?').all(runId, name) as { name: string; points: number }[]);
}

/** Pages or reduced ranges of a run's series, read in one transaction (one snapshot). */
export function readSeries(db: Database.Database, runId: string, query: SeriesQuery): Record<string, SeriesPage> {
  return db.transaction(() => readSeriesNow(db, runId, query))();
}

function readSeriesNow(db: Database.Database, runId: string, query: SeriesQuery): Record<string, SeriesPage> {
  const after = query.after ?? -1;
  const out: Record<string, SeriesPage> = {};
  for (const { name, points: total } of seriesOf(db, runId, query.name)) {
    if (query.maxPoints !== undefined) {
      const count =
        after < 0
          ? total
          : (db.prepare('SELECT COUNT(*) AS n FROM metrics WHERE run_id = ? AND name = ? AND step > ?').get(runId, name, after) as { n: number }).n;
      if (count > query.maxPoints) {
        out[name] = { ...reduceRange(db, runId, name, after, query.maxPoints), next: null, total, downsampled: true };
        continue;
      }
      const rows = db.prepare('SELECT step, value, time FROM metrics WHERE run_id = ? AND name = ? AND step > ? ORDER BY step').raw().all(runId, name, after) as Row[];
      out[name] = { ...columns(rows), next: null, total, downsampled: false };
      continue;
    }
    const limit = query.limit ?? DEFAULT_PAGE;
    const rows = db
      .prepare('SELECT step, value, time FROM metrics WHERE run_id = ? AND name = ? AND step > ? ORDER BY step LIMIT ?')
      .raw()
      .all(runId, name, after, limit + 1) as Row[];
    const more = rows.length > limit;
    if (more) rows.length = limit;
    out[name] = {
      ...columns(rows),
      next: more ? rows[rows.length - 1]![0] : null,
      total,
      downsampled: false,
    };
  }
  return out;
}

/** A metrics row: step, value, time. */
type Row = [number, number, number | null];

function columns(rows: Row[]): { steps: number[]; values: number[]; times: (number | null)[] } {
  return { steps: rows.map((r) => r[0]), values: rows.map((r) => r[1]), times: rows.map((r) => r[2]) };
}

/** The min/max reduction of the points after `after` (more than `maxPoints` of them). */
function reduceRange(db: Database.Database, runId: string, name: string, after: number, maxPoints: number): { steps: number[]; values: number[]; times: (number | null)[] } {
  const ends = db
    .prepare('SELECT MIN(step) AS lo, MAX(step) AS hi FROM metrics WHERE run_id = ? AND name = ? AND step > ?')
    .get(runId, name, after) as { lo: number; hi: number };
  const buckets = Math.max(1, Math.floor((maxPoints - 4) / 2));
  const scale = buckets / (ends.hi - ends.lo + 1);
  const kept = new Map<number, Row>();
  const edge = db.prepare('SELECT step, value, time FROM metrics WHERE run_id = ? AND name = ? AND step = ?').raw();
  for (const step of [ends.lo, ends.hi]) {
    const row = edge.get(runId, name, step) as Row;
    kept.set(row[0], row);
  }
  // SQLite gives the bare columns (`step`, `time`) of an aggregate MIN() / MAX() from the row holding it.
  for (const extreme of ['MIN', 'MAX']) {
    const rows = db
      .prepare(
        `SELECT CAST((step - ?) * ? AS INTEGER) AS bucket, step, ${extreme}(value) AS value, time
         FROM metrics WHERE run_id = ? AND name = ? AND step > ? GROUP BY bucket`,
      )
      .raw()
      .all(ends.lo, scale, runId, name, after) as [number, number, number, number | null][];
    for (const [, step, value, time] of rows) kept.set(step, [step, value, time]);
  }
  const steps = [...kept.keys()].sort((a, b) => a - b);
  return columns(steps.map((s) => kept.get(s)!));
}
