/**
 * Bounded reads of metric series: a page of points after a step (`after`, `limit`), or the
 * whole range reduced to at most `maxPoints` points that keep every bucket's minimum and
 * maximum (so spikes survive, and the global extremes always do). These run on read-only
 * connections in worker threads (series-readers.ts); they take a database handle so tests
 * can call them directly.
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
  /** Pass as `after` for the next page; null when this page reaches the end. */
  next: number | null;
  /** Points the series holds in all. */
  total: number;
  /** True when the points are a min/max reduction of the range. */
  downsampled: boolean;
}

/**
 * Keeps at most `maxPoints` (≥ 4) of `count` points delivered in step order: the first, the
 * last, and the minimum and maximum of each of ⌊(maxPoints − 2) / 2⌋ buckets of equal point
 * counts, in step order. `count` must be the number of points `each` delivers.
 */
export function downsampleMinMax(count: number, maxPoints: number, each: (visit: (step: number, value: number) => void) => void): { steps: number[]; values: number[] } {
  const steps: number[] = [];
  const values: number[] = [];
  let emitted = -1;
  const emit = (p: Point) => {
    if (p.index === emitted) return;
    emitted = p.index;
    steps.push(p.step);
    values.push(p.value);
  };
  if (count <= maxPoints) {
    let index = 0;
    each((step, value) => emit({ index: index++, step, value }));
    return { steps, values };
  }
  const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
  let bucket = -1;
  let lo: Point | undefined;
  let hi: Point | undefined;
  let last: Point | undefined;
  const flush = () => {
    if (!lo || !hi) return;
    const [a, b] = lo.index <= hi.index ? [lo, hi] : [hi, lo];
    emit(a);
    emit(b);
  };
  let index = 0;
  each((step, value) => {
    const p = { index, step, value };
    if (index === 0) emit(p);
    const b = Math.floor((index * buckets) / count);
    if (b !== bucket) {
      flush();
      bucket = b;
      lo = p;
      hi = p;
    } else {
      if (value < lo!.value) lo = p;
      if (value > hi!.value) hi = p;
    }
    last = p;
    index++;
  });
  flush();
  if (last) emit(last);
  return { steps, values };
}

interface Point {
  index: number;
  step: number;
  value: number;
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
      const rows = db.prepare('SELECT step, value FROM metrics WHERE run_id = ? AND name = ? AND step > ? ORDER BY step').raw();
      const reduced = downsampleMinMax(count, query.maxPoints, (visit) => {
        for (const row of rows.iterate(runId, name, after) as Iterable<[number, number]>) visit(row[0], row[1]);
      });
      out[name] = { ...reduced, next: null, total, downsampled: count > query.maxPoints };
      continue;
    }
    const limit = query.limit ?? DEFAULT_PAGE;
    const rows = db
      .prepare('SELECT step, value FROM metrics WHERE run_id = ? AND name = ? AND step > ? ORDER BY step LIMIT ?')
      .raw()
      .all(runId, name, after, limit + 1) as [number, number][];
    const more = rows.length > limit;
    if (more) rows.length = limit;
    out[name] = {
      steps: rows.map((r) => r[0]),
      values: rows.map((r) => r[1]),
      next: more ? rows[rows.length - 1]![0] : null,
      total,
      downsampled: false,
    };
  }
  return out;
}
