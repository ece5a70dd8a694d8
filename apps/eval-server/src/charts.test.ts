/** The dashboard's chart helpers (public/charts.js), checked in Node against brute force. */
import { describe, expect, it } from 'vitest';

type Charts = {
  extent(values: ArrayLike<number>): [number, number];
  pixelColumns(steps: number[], values: number[], x0: number, x1: number, columns: number): Record<'first' | 'min' | 'max' | 'last', Float64Array>;
};
// A path in a variable: the module is plain browser JavaScript without type declarations.
const chartsPath = '../public/charts.js';
const charts = (await import(/* @vite-ignore */ chartsPath)) as Charts;

describe('extent', () => {
  it('takes a million values (the spread Math.min(...values) throws a RangeError there)', () => {
    const values = Array.from({ length: 1_000_000 }, (_, i) => Math.sin(i));
    values[123_456] = -7;
    values[654_321] = 9;
    expect(() => Math.min(...values)).toThrow(RangeError);
    expect(charts.extent(values)).toEqual([-7, 9]);
  });

  it('skips non-finite values', () => {
    expect(charts.extent([Number.NaN, 2, Number.POSITIVE_INFINITY, -1])).toEqual([-1, 2]);
    expect(charts.extent([])).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });
});

describe('pixelColumns', () => {
  it('matches first, min, max and last per column by brute force', () => {
    let seed = 5;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const n = 10_000;
    const steps = Array.from({ length: n }, (_, i) => 2 * i + 3);
    const values = steps.map(() => rand() * 10 - 5);
    values[77] = Number.NaN;
    const columns = 37;
    const x0 = steps[0]!;
    const x1 = steps.at(-1)!;
    const got = charts.pixelColumns(steps, values, x0, x1, columns);
    for (let c = 0; c < columns; c++) {
      const inColumn = steps
        .map((s, i) => [s, values[i]!] as const)
        .filter(([s, v]) => Number.isFinite(v) && Math.min(columns - 1, Math.floor(((s - x0) * columns) / (x1 - x0))) === c)
        .map(([, v]) => v);
      expect(got.first[c]).toBe(inColumn[0]);
      expect(got.last[c]).toBe(inColumn.at(-1));
      expect(got.min[c]).toBe(Math.min(...inColumn));
      expect(got.max[c]).toBe(Math.max(...inColumn));
    }
  });
});
