import { casesOf } from '../fixtures/reference.js';
import { describe, expect, it } from 'vitest';
import { ParallelFolding, RankGenerator, generateMaskedOrthogonalRankGroups } from './rank-generator.js';

describe('generateMaskedOrthogonalRankGroups', () => {
  it("reproduces Megatron's docstring examples", () => {
    // 8 ranks, order tp-pp-dp, sizes 2-2-2: dp groups
    expect(generateMaskedOrthogonalRankGroups(8, [2, 2, 2], [false, false, true])).toEqual([
      [0, 4],
      [1, 5],
      [2, 6],
      [3, 7],
    ]);
    // [tp, dp, pp] = [2, 3, 4], dp mask
    const dp = generateMaskedOrthogonalRankGroups(24, [2, 3, 4], [false, true, false]);
    expect(dp).toHaveLength(8);
    expect(dp[0]).toEqual([0, 2, 4]);
    expect(dp[1]).toEqual([1, 3, 5]);
    expect(dp[7]).toEqual([19, 21, 23]);
  });
});

describe('RankGenerator', () => {
  it('FACTS example: 8 ranks, order tp-pp-dp, sizes 2-2-2', () => {
    const g = new RankGenerator({ tp: 2, ep: 1, dp: 2, pp: 2, cp: 1, order: 'tp-pp-dp' });
    expect(g.order).toBe('tp-pp-dp-ep-cp');
    expect(g.getRanks('dp')).toEqual([
      [0, 4],
      [1, 5],
      [2, 6],
      [3, 7],
    ]);
    expect(g.getRanks('tp')).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    expect(g.getRanks('pp')).toEqual([
      [0, 2],
      [1, 3],
      [4, 6],
      [5, 7],
    ]);
    expect(g.getRanks('tp-pp')).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(g.getRanks('tp-dp')).toEqual([
      [0, 1, 4, 5],
      [2, 3, 6, 7],
    ]);
    // token order inside the mask does not matter, the generator's order does
    expect(g.getRanks('dp-tp')).toEqual(g.getRanks('tp-dp'));
  });

  it('default order tp-cp-ep-dp-pp with cp, and rank offsets', () => {
    const g = new RankGenerator({ tp: 2, ep: 1, dp: 2, pp: 2, cp: 2, order: 'tp-cp-ep-dp-pp', rankOffset: 16 });
    expect(g.worldSize).toBe(16);
    expect(g.getRanks('cp')[0]).toEqual([16, 18]);
    expect(g.getRanks('dp-cp')[0]).toEqual([16, 18, 20, 22]);
    expect(g.getRanks('pp')[0]).toEqual([16, 24]);
    expect(g.groupOf('tp', 21)).toEqual([20, 21]);
  });

  it('every mask partitions the world', () => {
    const g = new RankGenerator({ tp: 2, ep: 3, dp: 2, pp: 2, cp: 1, order: 'tp-ep-dp-pp' });
    for (const token of ['tp', 'ep', 'dp', 'pp', 'tp-ep', 'ep-dp', 'tp-ep-pp', 'tp-ep-dp-pp']) {
      const flat = g.getRanks(token).flat().sort((a, b) => a - b);
      expect(flat).toEqual(Array.from({ length: 24 }, (_, i) => i));
    }
  });

  it('validity checks name the problem', () => {
    expect(() => new RankGenerator({ tp: 1, ep: 2, dp: 1, pp: 1, cp: 2, order: 'tp-cp-ep-dp-pp' })).toThrow(/ep \(2\) and cp \(2\)/);
    expect(() => new RankGenerator({ tp: 2, ep: 1, dp: 1, pp: 1, cp: 1, order: 'dp-pp' })).toThrow(/size of tp is 2/);
    expect(() => new RankGenerator({ tp: 0, ep: 1, dp: 1, pp: 1, cp: 1, order: 'tp' })).toThrow(/tp must be/);
    expect(() => new RankGenerator({ tp: 1, ep: 1, dp: 1, pp: 1, cp: 1, order: 'tp-xx' })).toThrow(/unknown dimension 'xx'/);
    const g = new RankGenerator({ tp: 1, ep: 1, dp: 2, pp: 1, cp: 1, order: 'tp-dp' });
    expect(() => g.getRanks('zz')).toThrow(/unknown dimension 'zz'/);
  });
});

describe('ParallelFolding', () => {
  it('folds attention tp2·cp2·dp2 and experts etp1·ep4·edp2 onto 8 ranks', () => {
    const f = new ParallelFolding({ worldSize: 8, tp: 2, cp: 2, ep: 4, etp: 1 });
    expect(f.dp).toBe(2);
    expect(f.edp).toBe(2);
    expect(f.attentionGroups('tp')).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    expect(f.attentionGroups('cp')[0]).toEqual([0, 2]);
    expect(f.attentionGroups('dp')[0]).toEqual([0, 4]);
    expect(f.expertGroups('ep')).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(f.expertGroups('edp')).toEqual([
      [0, 4],
      [1, 5],
      [2, 6],
      [3, 7],
    ]);
    expect(f.expertGroups('etp')).toHaveLength(8);
    // the same ranks form the attention tp·cp block and one expert ep group
    expect(f.attentionGroups('tp-cp')).toEqual(f.expertGroups('ep'));
  });

  it('with pipeline parallelism both generators share the pp groups', () => {
    const f = new ParallelFolding({ worldSize: 16, tp: 2, pp: 2, ep: 4, etp: 1 });
    expect(f.attention.getRanks('pp')).toEqual(f.expert.getRanks('pp'));
    expect(f.attention.getRanks('pp')[0]).toEqual([0, 8]);
    expect(f.edp).toBe(2);
    expect(f.dp).toBe(4);
  });

  it("Megatron's checks", () => {
    expect(() => new ParallelFolding({ worldSize: 8, tp: 3 })).toThrow(/not divisible by tp·pp·cp = 3/);
    expect(() => new ParallelFolding({ worldSize: 8, tp: 1, ep: 3 })).toThrow(/etp·ep·pp = 3/);
    expect(() => new ParallelFolding({ worldSize: 16, tp: 2, pp: 2, ep: 4, etp: 1, order: 'tp-cp-ep-pp-dp' })).toThrow(/data-parallel sizes/);
  });
});

describe('RankGenerator against a Python port of parallel_state.py (scripts/megatron-reference.py)', () => {
  const cases = casesOf('ranks');
  it(`matches every mask of ${cases.length} random layouts and orders`, () => {
    expect(cases.length).toBe(12);
    for (const c of cases) {
      const g = new RankGenerator({ ...c.sizes, order: c.order, rankOffset: c.rankOffset });
      for (const [token, groups] of Object.entries(c.groups)) expect(g.getRanks(token)).toEqual(groups);
    }
  });
});
