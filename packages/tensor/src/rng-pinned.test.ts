/**
 * The generator's outputs pinned to numbers computed outside this code base: a separate
 * implementation of SplitMix32 seeding (the MurmurHash3 finalizer constants 0x85ebca6b and
 * 0xc2b2ae35, increment 0x9e3779b9, the high word of large seeds folded in with 0x27d4eb2d)
 * and xoshiro128** (Blackman and Vigna), written in Python from the published algorithms.
 *
 * Saved checkpoints hold generator states and experiments are reproduced from seeds, so a
 * change to any of these numbers breaks every saved run: it must be deliberate, and then
 * these values are regenerated from the new algorithm's reference, not from this code.
 */
import { describe, expect, it } from 'vitest';
import { createRng, type RngState } from './rng.js';

const draws = (seedOrState: number | RngState, n: number) => {
  const rng = createRng(seedOrState);
  return Array.from({ length: n }, () => rng.nextUint32());
};

describe('createRng pinned outputs', () => {
  it('seeds through SplitMix32 into the pinned state, then draws xoshiro128**', () => {
    const cases: [number, RngState, number[]][] = [
      [0, [2462723854, 1020716019, 454327756, 1275600319], [3809008728, 1133695204, 53579671, 2891528803]],
      [1, [2527132011, 314344336, 2535364964, 2041432039], [2442144158, 3238099751, 3819917871, 2104621829]],
      [42, [939911724, 3948730756, 321366731, 3317318717], [2837322924, 544945897, 479756282, 3500138142]],
      [2 ** 40, [2564459979, 3949319581, 3265152245, 809241185], [1933987628, 1761891722, 1428911416, 2782516406]],
      [2 ** 40 + 2 ** 33, [1111020164, 1944998049, 1739980399, 2539161322], [1914054569, 3194782735, 2021174232, 1279660504]],
    ];
    for (const [seed, state, first] of cases) {
      expect(createRng(seed).getState(), `state of seed ${seed}`).toEqual(state);
      expect(draws(seed, 4), `first draws of seed ${seed}`).toEqual(first);
      expect(draws(state, 4), `first draws from the state of seed ${seed}`).toEqual(first);
    }
  });

  it('next() is the top 24 bits of a draw over 2^24', () => {
    const rng = createRng(42);
    expect([rng.next(), rng.next(), rng.next()]).toEqual([0.6606156826019287, 0.12688004970550537, 0.11170190572738647]);
    expect((2837322924 >>> 8) / 2 ** 24).toBe(0.6606156826019287);
  });

  it('int, permutation, normal and fork follow from the pinned draws', () => {
    // seed 7 draws 1004282400, 2200021487, 1928073449: each below its rejection limit
    const a = createRng(7);
    expect([a.int(0, 10), a.int(-5, 5), a.int(0, 2 ** 32)]).toEqual([1004282400 % 10, -5 + (2200021487 % 10), 1928073449]);
    expect(Array.from(createRng(9).permutation(6))).toEqual([3, 1, 5, 0, 2, 4]);
    const n = createRng(3).normalArray(2);
    expect(n[0]).toBe(Math.fround(-0.9853308200836182));
    expect(n[1]).toBe(Math.fround(-1.2525886297225952));
    // fork: a new seed from two draws, u1 · 2^21 + (u2 >>> 11)
    expect(createRng(5).fork().getState()).toEqual([21230371, 1155563735, 1039069306, 3522832600]);
  });

  it('uniformArray and randint scale the same draws', () => {
    const u = createRng(42).uniformArray(2, -2, 2);
    expect(u[0]).toBe(Math.fround(-2 + 4 * 0.6606156826019287));
    expect(u[1]).toBe(Math.fround(-2 + 4 * 0.12688004970550537));
    expect(Array.from(createRng(7).randint([3], 0, 10).dataSync())).toEqual([0, 7, 9]);
  });
});

describe('createRng draws exactly as many numbers as it needs', () => {
  it('int rejects draws at or above the largest multiple of the range (3 · 2^30 here: one draw in four)', () => {
    // Seed 0 draws 3809008728 (rejected: ≥ 3221225472), then 1133695204.
    expect(createRng(0).int(0, 3 * 2 ** 30)).toBe(1133695204);
    // A state whose first draw is the limit itself: rejected too, as is the next one.
    const atLimit = createRng([1, 864026624, 2, 3]);
    expect(draws([1, 864026624, 2, 3], 3)).toEqual([3221225472, 3221242752, 11520]);
    expect(atLimit.int(5, 5 + 3 * 2 ** 30)).toBe(5 + 11520);
    expect(atLimit.nextUint32()).toBe(3267846912);
  });

  it('uniformArray, shuffle and permutation consume one draw per element they set', () => {
    const stream = draws(0, 4);
    const u = createRng(0);
    u.uniformArray(3);
    expect(u.nextUint32()).toBe(stream[3]);
    const s = createRng(0);
    s.shuffle(['a', 'b', 'c']); // int(0, 3), int(0, 2): no third draw for the last position
    expect(s.nextUint32()).toBe(stream[2]);
    const p = createRng(0);
    p.permutation(3);
    expect(p.nextUint32()).toBe(stream[2]);
    const b = createRng(0);
    b.bernoulli([2], 0.5);
    expect(b.nextUint32()).toBe(stream[2]);
  });

  it('bernoulli is 1 when the draw is strictly below p', () => {
    const first = 0.6606156826019287; // seed 42's first next()
    expect(Array.from(createRng(42).bernoulli([1], first).dataSync())).toEqual([0]);
    expect(Array.from(createRng(42).bernoulli([1], first + 2 ** -24).dataSync())).toEqual([1]);
  });

  it('keeps a state with some zero words as it is (only the all-zero state is replaced)', () => {
    expect(createRng([0, 5, 6, 7]).getState()).toEqual([0, 5, 6, 7]);
    expect(createRng([9, 0, 0, 0]).getState()).toEqual([9, 0, 0, 0]);
  });
});

describe('createRng state round trip', () => {
  it('getState after four draws is the pinned state, and resuming from it continues the stream', () => {
    const rng = createRng(42);
    for (let i = 0; i < 4; i++) rng.nextUint32();
    const state = rng.getState();
    expect(state).toEqual([2211311650, 1639752229, 3329302215, 2393945593]);
    const rest = draws(42, 8).slice(4);
    expect(draws(JSON.parse(JSON.stringify(state)) as RngState, 4)).toEqual(rest);
    const other = createRng(99);
    other.setState(state);
    expect([other.nextUint32(), other.nextUint32(), other.nextUint32(), other.nextUint32()]).toEqual(rest);
  });

  it('getState returns a copy: changing it does not change the generator', () => {
    const rng = createRng(1);
    const state = rng.getState();
    state[0] = 0;
    expect(rng.getState()[0]).toBe(2527132011);
    expect(rng.nextUint32()).toBe(2442144158);
  });

  it('takes state words modulo 2^32 and replaces the all-zero state by [1, 0, 0, 0]', () => {
    expect(createRng([-1, 2 ** 32 + 5, 3, 4]).getState()).toEqual([4294967295, 5, 3, 4]);
    expect(draws([-1, 2 ** 32 + 5, 3, 4], 2)).toEqual([28800, 4294928119]);
    expect(createRng([0, 0, 0, 0]).getState()).toEqual([1, 0, 0, 0]);
    expect(draws([0, 0, 0, 0], 2)).toEqual([0, 5760]);
    const rng = createRng(3);
    rng.setState([0, 0, 0, 0]);
    expect(rng.getState()).toEqual([1, 0, 0, 0]);
  });

  it('rejects states and seeds that are not integers, and empty or huge int ranges', () => {
    expect(() => createRng([1, 2, 3, 4.5] as RngState)).toThrow('createRng: a state must be four 32-bit integers, got [1,2,3,4.5]');
    expect(() => createRng([1, 2, 3] as unknown as RngState)).toThrow(/four 32-bit integers/);
    expect(() => createRng('7' as unknown as number)).toThrow(/four 32-bit integers/);
    expect(() => createRng(Number.POSITIVE_INFINITY)).toThrow('createRng: seed must be a finite number, got Infinity');
    const rng = createRng(1);
    expect(() => createRng(1).setState([1, 2] as unknown as RngState)).toThrow(/four 32-bit integers/);
    expect(() => rng.int(3, 3)).toThrow('rng.int: high (3) must exceed low (3)');
    expect(() => rng.int(0, 2 ** 32 + 1)).toThrow('rng.int: range 4294967297 exceeds 2^32');
    expect(rng.getState()).toEqual(createRng(1).getState()); // a refused call draws nothing
  });
});
