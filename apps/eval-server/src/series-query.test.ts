import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSeries } from './series-query.js';
import { Store } from './store.js';

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** Writes one series into a fresh store: steps and values as given, each step logged at time 1e12 + 10·step. */
function storeWith(steps: number[], values: number[]): { store: Store; run: string } {
  const store = new Store(join(mkdtempSync(join(tmpdir(), 'kiln-series-')), 'db.sqlite'));
  const run = store.createRun('series', 'test', {}).run.id;
  for (let start = 0; start < steps.length; start += 10_000) {
    store.appendMetrics(run, steps.slice(start, start + 10_000).map((step, i) => ({ step, name: 'x', value: values[start + i]!, time: 1e12 + 10 * step })));
  }
  return { store, run };
}

describe('the maxPoints reduction', () => {
  it('keeps the first, the last, and each step bucket\'s min and max, in step order, within maxPoints', () => {
    const rand = lcg(11);
    for (const [n, maxPoints, gap] of [[1000, 50, 3], [1001, 4, 1], [97, 10, 7], [20_000, 999, 1], [5, 4, 2], [3000, 100, 1000]] as const) {
      const steps = Array.from({ length: n }, (_, i) => gap * i + 1 + (i > n / 2 ? 5 * gap : 0));
      const values = steps.map(() => Math.round(rand() * 1e6) / 1e3);
      const { store, run } = storeWith(steps, values);
      const out = readSeries(store.db, run, { maxPoints }).x!;
      expect(out.downsampled).toBe(n > maxPoints);
      expect(out.steps.length).toBeLessThanOrEqual(maxPoints);
      expect(out.steps[0]).toBe(steps[0]);
      expect(out.steps.at(-1)).toBe(steps.at(-1));
      for (let i = 1; i < out.steps.length; i++) expect(out.steps[i]!).toBeGreaterThan(out.steps[i - 1]!);
      const valueAt = new Map(steps.map((st, i) => [st, values[i]!]));
      for (const [i, st] of out.steps.entries()) expect(valueAt.get(st)).toBe(out.values[i]);
      // each kept point keeps its own time (the bare column of its MIN/MAX row)
      expect(out.times).toEqual(out.steps.map((st) => 1e12 + 10 * st));
      if (n > maxPoints) {
        // reference: the same equal-width step buckets, their extremes by brute force
        const buckets = Math.max(1, Math.floor((maxPoints - 4) / 2));
        const lo = steps[0]!;
        const span = steps.at(-1)! - lo + 1;
        const byBucket = new Map<number, number[]>();
        steps.forEach((st, i) => {
          const b = Math.floor(((st - lo) * buckets) / span);
          byBucket.set(b, [...(byBucket.get(b) ?? []), values[i]!]);
        });
        for (const [b, vs] of byBucket) {
          expect(out.values, `bucket ${b} of n=${n}`).toContain(Math.min(...vs));
          expect(out.values, `bucket ${b} of n=${n}`).toContain(Math.max(...vs));
        }
      }
      store.close();
    }
  });

  it('keeps a single spike in a hundred thousand points', () => {
    const n = 100_000;
    const steps = Array.from({ length: n }, (_, i) => i);
    const { store, run } = storeWith(steps, steps.map((i) => (i === 77_777 ? 1e6 : Math.sin(i / 1000))));
    const out = readSeries(store.db, run, { maxPoints: 200 }).x!;
    expect(out.steps.length).toBeLessThanOrEqual(200);
    expect(out.values[out.steps.indexOf(77_777)]).toBe(1e6);
    store.close();
  });
});

describe('readSeries', () => {
  const store = new Store(join(mkdtempSync(join(tmpdir(), 'kiln-series-')), 'db.sqlite'));
  const run = store.createRun('series', 'test', {}).run.id;
  const n = 2500;
  for (let start = 0; start < n; start += 1000) {
    const points = [];
    for (let s = start; s < Math.min(n, start + 1000); s++) points.push({ step: 2 * s, name: 'loss', value: 1 / (s + 1) }, { step: s, name: 'lr', value: s });
    store.appendMetrics(run, points);
  }

  it('pages through a series with after/limit, each page ending where the next begins', () => {
    const seen: number[] = [];
    let after: number | undefined;
    let pages = 0;
    for (;;) {
      const page = readSeries(store.db, run, { name: 'loss', after, limit: 700 }).loss!;
      expect(page.total).toBe(n);
      expect(page.steps.length).toBeLessThanOrEqual(700);
      seen.push(...page.steps);
      pages++;
      if (page.next === null) break;
      expect(page.next).toBe(page.steps.at(-1));
      after = page.next;
    }
    expect(pages).toBe(4);
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => 2 * i));
  });

  it('answers every series of the run by default, at most the default page each', () => {
    const all = readSeries(store.db, run, {});
    expect(Object.keys(all).sort()).toEqual(['loss', 'lr']);
    expect(all.lr!.steps.length).toBe(n);
    expect(all.lr!.next).toBeNull();
    expect(readSeries(store.db, run, { name: 'missing' })).toEqual({});
    expect(readSeries(store.db, 'run-none', {})).toEqual({});
  });

  it('reduces a range with maxPoints, after a step when asked', () => {
    const reduced = readSeries(store.db, run, { name: 'lr', maxPoints: 100 }).lr!;
    expect(reduced.downsampled).toBe(true);
    expect(reduced.steps.length).toBeLessThanOrEqual(100);
    expect(reduced.steps[0]).toBe(0);
    expect(reduced.steps.at(-1)).toBe(n - 1);
    const tail = readSeries(store.db, run, { name: 'lr', after: n - 11, maxPoints: 100 }).lr!;
    expect(tail).toMatchObject({ downsampled: false, next: null, total: n });
    expect(tail.steps).toEqual(Array.from({ length: 10 }, (_, i) => n - 10 + i));
  });
});
