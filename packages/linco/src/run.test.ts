import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toCailJsonl } from './readers.js';
import { LincoConfigError, PRESETS, resolveLincoConfig, runLinco } from './run.js';
import { generateCases } from './synthetic.js';

describe('resolveLincoConfig', () => {
  it('fills a preset and merges overrides', () => {
    expect(resolveLincoConfig({})).toEqual(PRESETS.default);
    const c = resolveLincoConfig({ preset: 'tiny', train: { epochs: 2 }, data: { inject: { gender: 0.3 } } });
    expect(c.train).toEqual({ ...PRESETS.tiny.train, epochs: 2 });
    expect(c.data).toMatchObject({ source: 'synthetic', count: 600, inject: { region: 0.6, gender: 0.3 } });
    const f = resolveLincoConfig({ data: { source: 'file', path: 'x.jsonl' } });
    expect(f.data).toEqual({ source: 'file', path: 'x.jsonl' });
  });

  it('names the offending field', () => {
    const bad: [unknown, string][] = [
      [{ preset: 'huge' }, 'preset'],
      [{ train: { epochs: 0 } }, 'train.epochs'],
      [{ train: { learningRate: -1 } }, 'train.learningRate'],
      [{ train: { epoch: 3 } }, 'train.epoch'],
      [{ model: { type: 'bert' } }, 'model.type'],
      [{ data: { source: 'csv' } }, 'data.source'],
      [{ data: { source: 'file' } }, 'data.path'],
      [{ data: { inject: { region: -0.1 } } }, 'data.inject.region'],
      [{ sampling: { crossGroupShare: 1 } }, 'sampling.crossGroupShare'],
      [{ bootstrap: { confidence: 1.5 } }, 'bootstrap.confidence'],
      [{ metric: { term: { lifeDeath: 'drop' } } }, 'metric.term.lifeDeath'],
      [{ metric: { charge: { perCase: 'kl' } } }, 'metric.charge.perCase'],
      [{ breakdowns: ['court'] }, 'breakdowns[0]'],
      [{ debias: { method: 'magic' } }, 'debias.method'],
      [{ groupBy: '' }, 'groupBy'],
      [{ replicates: 0 }, 'replicates'],
      [{ groupRepeats: 0 }, 'replicates'],
      [{ baselineSplit: 'halves' }, 'baselineSplit'],
      [{ colour: 'red' }, 'colour'],
    ];
    for (const [input, field] of bad) {
      let err: unknown;
      try {
        resolveLincoConfig(input);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(LincoConfigError);
      expect((err as LincoConfigError).field).toBe(field);
      expect((err as Error).message.startsWith(`config.${field}: `)).toBe(true);
    }
  });
});

describe('runLinco', () => {
  it('runs the tiny preset end to end and returns a MetricFrame-like result', async () => {
    const stages = new Set<string>();
    const frame = await runLinco({ preset: 'tiny', backend: 'cpu' }, { onProgress: (e) => stages.add(e.stage) });
    expect(frame.overall.term).toBeGreaterThan(0);
    expect(frame.baseline).toBeDefined();
    expect(frame.byGroup['severity']).toBeDefined();
    expect(Object.keys(frame.difference('year'))).toEqual(['term', 'charge']);
    expect(frame.info['backend']).toBeTypeOf('string');
    expect([...stages]).toEqual(expect.arrayContaining(['backend', 'data', 'plan', 'train', 'predict', 'done']));
  });

  it('reads cases from a file and reports LInCo before de-biasing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'linco-run-'));
    const path = join(dir, 'cases.jsonl');
    writeFileSync(path, toCailJsonl(generateCases({ count: 400, seed: 9, regions: ['A', 'B'], inject: { region: 0.6 } })));
    const frame = await runLinco({
      preset: 'tiny',
      data: { source: 'file', path },
      sampling: { testSize: 40 },
      baselineRepeats: 0,
      debias: { method: 'adversarial' },
    });
    expect(frame.info['debias']).toBe('adversarial');
    expect((frame.info['before'] as { overall: { term: number } }).overall.term).toBeGreaterThan(0);
    expect(frame.baseline).toBeUndefined();
  });
});
