import { initBackend } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { linco, lincoBeforeAfter, type LincoOptions } from './linco.js';
import { generateCases } from './synthetic.js';

beforeAll(async () => {
  await initBackend({ env: { KILN_BACKEND: 'cpu' } });
});

const regions = ['Beijing', 'Hunan', 'Sichuan'];
const options: LincoOptions = {
  sampling: { groupBy: 'region', testSize: 80 },
  model: { type: 'hashed-ngram', buckets: 1024, dim: 16 },
  train: { epochs: 6, learningRate: 0.03 },
  bootstrap: { samples: 300 },
  seed: 2,
};

describe('linco', () => {
  it('rises with injected inconsistency and exceeds the random-split baseline', async () => {
    const events: string[] = [];
    const none = await linco(generateCases({ count: 700, seed: 1, regions, inject: { region: 0 } }), { ...options, baselineRepeats: 0 });
    const injected = await linco(generateCases({ count: 700, seed: 1, regions, inject: { region: 0.6 } }), {
      ...options,
      onProgress: (e) => events.push(e.stage),
    });
    expect(injected.overall.term).toBeGreaterThan(none.overall.term * 2);
    expect(injected.excess!.ci.term[0]).toBeGreaterThan(0);
    expect(injected.ci.term[0]).toBeLessThan(injected.overall.term);
    expect(Object.keys(injected.byGroup)).toEqual(['charge', 'severity', 'year']);
    expect(Object.keys(injected.byGroup['severity']!).sort()).toEqual(['heavy', 'light', 'medium']);
    expect(injected.difference('charge').term).toBeGreaterThanOrEqual(0);
    expect(injected.info['judges']).toHaveLength(3);
    expect(events).toContain('plan');
    expect(events).toContain('train');
    expect(events.at(-1)).toBe('done');
  });

  it('reweighting and Group DRO pull judges that see other groups together; the adversary trains a shared encoder', async () => {
    const cases = generateCases({ count: 700, seed: 3, regions, inject: { region: 0.6 } });
    const mixed = { ...options, baselineRepeats: 0, sampling: { ...options.sampling, crossGroupShare: 0.25 } };
    const rw = await lincoBeforeAfter(cases, { ...mixed, debias: { method: 'reweight' } });
    expect(rw.after.overall.term).toBeLessThan(rw.before.overall.term * 0.9);
    const dro = await lincoBeforeAfter(cases, { ...mixed, debias: { method: 'group-dro' } });
    expect(dro.after.overall.term).toBeLessThan(dro.before.overall.term * 0.9);
    const adv = await linco(cases, { ...options, baselineRepeats: 0, train: { epochs: 2 }, debias: { method: 'adversarial' } });
    expect(adv.info).toMatchObject({ encoder: 'shared', debias: 'adversarial' });
    await expect(linco(cases, { ...options, encoder: 'separate', debias: { method: 'adversarial' } })).rejects.toThrow(/needs encoder 'shared'/);
  });

  it('compares with placebo random splits (split + case variance) and judges charge sets on multi-charge cases', async () => {
    const cases = generateCases({ count: 500, seed: 5, regions, multiChargeRate: 0.4, inject: { region: 0.5, chargeFlip: 1.5 } });
    const f = await linco(cases, { ...options, sampling: { groupBy: 'region', testSize: 60 }, train: { epochs: 4, learningRate: 0.05 }, baselineRepeats: 3 });
    await expect(linco(cases, { ...options, baselineRepeats: 2 })).rejects.toThrow(/at least 3, got 2/);
    expect(f.info['charges']).toBe('multi');
    expect(f.info['baselineSplit']).toBe('permute');
    expect(f.baseline!.interval).toBe('split+cases');
    expect(f.baseline!.repeats).toHaveLength(3);
    expect(f.baseline!.splitSd!.term).toBeGreaterThan(0);
    expect(f.baseline!.ci.term[0]).toBeLessThan(f.baseline!.overall.term);
    expect(f.excess!.p!.term).toBeGreaterThanOrEqual(0);
    expect(f.excess!.p!.term).toBeLessThanOrEqual(1);
    // Jaccard distances of sets: fractional per-case values (not only multiples of 1/3 pairs).
    expect(f.overall.charge).toBeGreaterThan(0);
    const single = await linco(cases, { ...options, sampling: { groupBy: 'region', testSize: 60 }, train: { epochs: 1 }, baselineRepeats: 0, charges: 'single' });
    expect(single.info['charges']).toBe('single');
  });

  it('combines replicates as an ensemble or by averaging scores; uniform random splits on request', async () => {
    const cases = generateCases({ count: 300, seed: 6, regions, inject: { region: 0.5 } });
    const quick = { ...options, sampling: { groupBy: 'region', testSize: 40 }, train: { epochs: 2, learningRate: 0.05 }, bootstrap: { samples: 50 } };
    const one = await linco(cases, { ...quick, baselineRepeats: 0 });
    const oneAvg = await linco(cases, { ...quick, baselineRepeats: 0, combineReplicates: 'average' });
    // One replicate: the two ways coincide.
    expect(oneAvg.overall).toEqual(one.overall);
    const ens = await linco(cases, { ...quick, baselineRepeats: 3, baselineSplit: 'uniform', replicates: 2 });
    const avg = await linco(cases, { ...quick, baselineRepeats: 0, replicates: 2, combineReplicates: 'average' });
    expect(ens.info).toMatchObject({ replicates: 2, combineReplicates: 'ensemble', baselineSplit: 'uniform', baselineRepeats: 3 });
    expect(avg.info['combineReplicates']).toBe('average');
    expect(avg.overall.term).not.toBe(ens.overall.term);
    expect(ens.baseline!.repeats).toHaveLength(3);
    await expect(linco(cases, { ...quick, combineReplicates: 'vote' as 'average' })).rejects.toThrow(/combineReplicates/);
  });

  it('runs with the TextCNN judge and a group breakdown', async () => {
    const cases = generateCases({ count: 200, seed: 4, regions: ['A', 'B'], inject: { region: 0.5 } });
    const f = await linco(cases, {
      ...options,
      sampling: { groupBy: 'region', testSize: 30 },
      model: { type: 'text-cnn', vocab: 256, embed: 8, filters: 4, widths: [2, 3], maxLength: 32 },
      train: { epochs: 1 },
      baselineRepeats: 0,
      breakdowns: ['group:gender'],
      replicates: 2,
    });
    expect(f.info['replicates']).toBe(2);
    expect(Number.isFinite(f.overall.term)).toBe(true);
    expect(Object.keys(f.byGroup['group:gender']!).sort()).toEqual(['female', 'male']);
    expect(f.info['model']).toMatchObject({ type: 'text-cnn' });
  });
});
