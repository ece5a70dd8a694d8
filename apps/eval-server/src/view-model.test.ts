/** The dashboard's view model (public/view-model.js), checked in Node. */
import { describe, expect, it } from 'vitest';

type Run = { id: string; name: string; kind: string; tags?: string[]; config: unknown };
type ViewModel = {
  smooth(values: number[], weight: number): number[];
  nearestIndex(steps: number[], x: number): number;
  parseView(hash: string): { run?: string; compare: string[]; smoothing: number; log: boolean; x: 'step' | 'time' };
  formatView(view: { run?: string; compare: string[]; smoothing: number; log: boolean; x: 'step' | 'time' }): string;
  xCoordinates(line: { steps: number[]; values: number[]; times?: (number | null)[] }, x: string): { xs: number[]; values: number[]; steps: number[] };
  timeLabel(ms: number, spanMs: number): string;
  filterRuns(runs: Run[], filter: { kind?: string; text?: string; tag?: string; config?: string }): Run[];
  configDiff(configs: unknown[]): [string, (string | undefined)[]][];
  finalValues(held: Map<string, { values: number[] }>): Map<string, number>;
};
// A path in a variable: the module is plain browser JavaScript without type declarations.
const modelPath = '../public/view-model.js';
const vm = (await import(/* @vite-ignore */ modelPath)) as ViewModel;

describe('smooth', () => {
  it('is TensorBoard\'s debiased exponential moving average', () => {
    const values = [1, 3, 2, Number.NaN, 5];
    const w = 0.6;
    // by hand: last_i = w last_{i-1} + (1 - w) v_i, divided by 1 - w^count
    const l1 = 0.4 * 1;
    const l2 = w * l1 + 0.4 * 3;
    const l3 = w * l2 + 0.4 * 2;
    const l4 = w * l3 + 0.4 * 5;
    const got = vm.smooth(values, w);
    expect(got[0]).toBeCloseTo(1, 12); // debiased: the first point is itself
    expect(got[1]).toBeCloseTo(l2 / (1 - w ** 2), 12);
    expect(got[2]).toBeCloseTo(l3 / (1 - w ** 3), 12);
    expect(got[3]).toBeNaN();
    expect(got[4]).toBeCloseTo(l4 / (1 - w ** 4), 12);
    expect(vm.smooth(values, 0)).toEqual(values);
    // a constant stays constant at any weight
    for (const v of vm.smooth(Array(50).fill(7), 0.99)) expect(v).toBeCloseTo(7, 9);
  });
});

describe('nearestIndex', () => {
  it('finds the nearest step by bisection, matching a linear scan', () => {
    const steps = [0, 3, 4, 10, 11, 50];
    for (let x = -5; x <= 60; x += 0.5) {
      let best = 0;
      for (let i = 1; i < steps.length; i++) if (Math.abs(steps[i]! - x) < Math.abs(steps[best]! - x)) best = i;
      expect(Math.abs(steps[vm.nearestIndex(steps, x)]! - x), String(x)).toBe(Math.abs(steps[best]! - x));
    }
    expect(vm.nearestIndex([], 1)).toBe(-1);
    expect(vm.nearestIndex([5], 100)).toBe(0);
  });
});

describe('the view in the URL', () => {
  it('round-trips runs compared and curve controls, and ignores nonsense', () => {
    const view = { compare: ['run-a', 'run-b'], smoothing: 0.6, log: true, x: 'time' as const };
    const hash = vm.formatView(view);
    expect(hash).toBe('#compare=run-a%2Crun-b&smooth=0.6&log=1&x=time');
    expect(vm.parseView(hash)).toEqual({ run: undefined, ...view });
    expect(vm.parseView('#run=run-x')).toEqual({ run: 'run-x', compare: [], smoothing: 0, log: false, x: 'step' });
    expect(vm.parseView('#x=bogus').x).toBe('step');
    expect(vm.parseView('#smooth=7&log=yes').smoothing).toBe(0);
    expect(vm.parseView('#smooth=abc').smoothing).toBe(0);
  });
});

describe('the x axis', () => {
  it('uses steps, or wall times leaving out points stored without one', () => {
    const line = { steps: [1, 2, 3], values: [10, 20, 30], times: [null, 5000, 6000] };
    expect(vm.xCoordinates(line, 'step')).toEqual({ xs: [1, 2, 3], values: [10, 20, 30], steps: [1, 2, 3] });
    expect(vm.xCoordinates(line, 'time')).toEqual({ xs: [5000, 6000], values: [20, 30], steps: [2, 3] });
    expect(vm.xCoordinates({ steps: [1], values: [1] }, 'time').xs).toEqual([]);
  });

  it('labels wall time as clock time, with seconds for short spans and the date for long ones', () => {
    const t = new Date(2026, 11, 3, 9, 5, 7).getTime();
    expect(vm.timeLabel(t, 60_000)).toBe('09:05:07');
    expect(vm.timeLabel(t, 3600_000)).toBe('09:05');
    expect(vm.timeLabel(t, 3 * 86400_000)).toBe('12/3 09:05');
  });
});

describe('filterRuns', () => {
  const runs: Run[] = [
    { id: '1', name: 'CSP on', kind: 'pointcloud', tags: ['csp', 'ablation'], config: { model: { csp: true }, lr: 0.01 } },
    { id: '2', name: 'CSP off', kind: 'pointcloud', tags: ['ablation'], config: { model: { csp: false }, lr: 0.01 } },
    { id: '3', name: 'router topk', kind: 'moe', config: { router: 'topk' } },
  ];
  const ids = (f: Parameters<ViewModel['filterRuns']>[1]) => vm.filterRuns(runs, f).map((r) => r.id);
  it('by kind, name, tag and config key = value', () => {
    expect(ids({})).toEqual(['1', '2', '3']);
    expect(ids({ kind: 'moe' })).toEqual(['3']);
    expect(ids({ text: 'csp' })).toEqual(['1', '2']);
    expect(ids({ tag: 'csp' })).toEqual(['1']);
    expect(ids({ config: 'model.csp=false' })).toEqual(['2']);
    expect(ids({ config: 'lr=0.01' })).toEqual(['1', '2']);
    expect(ids({ config: 'router="topk"' })).toEqual(['3']);
    expect(ids({ config: 'router' })).toEqual(['3']); // the key alone: runs that have it
    expect(ids({ kind: 'pointcloud', tag: 'ablation', text: 'off' })).toEqual(['2']);
  });
});

describe('comparison tables', () => {
  it('configDiff keeps only the keys that differ, missing ones included', () => {
    const diff = vm.configDiff([
      { lr: 0.01, model: { csp: true, channels: [32, 64] }, seed: 1 },
      { lr: 0.01, model: { csp: false, channels: [32, 64] }, seed: 1, extra: 'x' },
    ]);
    expect(diff).toEqual([
      ['extra', [undefined, '"x"']],
      ['model.csp', ['true', 'false']],
    ]);
    expect(vm.configDiff([{ a: 1 }, { a: 1 }])).toEqual([]);
  });

  it('finalValues takes each series\' last finite value', () => {
    const held = new Map([
      ['loss', { values: [3, 2, 1] }],
      ['acc', { values: [0.5, Number.NaN] }],
      ['empty', { values: [] }],
    ]);
    expect([...vm.finalValues(held)]).toEqual([
      ['loss', 1],
      ['acc', 0.5],
    ]);
  });
});
