import { describe, expect, it } from 'vitest';
import { baseTokens, detectMode, hashedFeatures, hashToken, tokenize } from './tokenize.js';

describe('tokenize', () => {
  it('uses character n-grams for Chinese, dropping punctuation', () => {
    expect(detectMode('被告人盗窃财物。')).toBe('char');
    expect(baseTokens('盗窃，财物')).toEqual(['盗', '窃', '财', '物']);
    expect(tokenize('盗窃财', { ngrams: [1, 2] })).toEqual(['盗', '窃', '财', '盗\u0001窃', '窃\u0001财']);
  });

  it('uses lower-cased word n-grams for space-separated text', () => {
    expect(detectMode('The defendant stole a phone.')).toBe('word');
    expect(tokenize('The defendant, stole', { ngrams: [1, 2] })).toEqual(['the', 'defendant', 'stole', 'the\u0001defendant', 'defendant\u0001stole']);
    expect(tokenize('被告人 stole', { mode: 'word', ngrams: [1] })).toEqual(['被告人', 'stole']);
  });

  it('hashes deterministically into range', () => {
    // Pinned: saved judges' embeddings are indexed by these hashes, so a change must fail here.
    // FNV-1a (32-bit) over UTF-16 code units; 'a' → 0xe40c292c is the published test vector.
    expect(hashToken('')).toBe(0x811c9dc5);
    expect(hashToken('a')).toBe(0xe40c292c);
    expect(hashToken('盗窃')).toBe(3199116367);
    expect(hashToken('窃盗')).toBe(2703255423);
    expect(hashToken('盗窃', 7)).toBe(781620324);
    const f = hashedFeatures('被告人盗窃财物', 64);
    expect(f.length).toBe(7 + 6);
    expect([...f].every((x) => x >= 0 && x < 64)).toBe(true);
    expect(() => hashedFeatures('x', 0)).toThrow(/buckets/);
    expect(() => tokenize('x', { ngrams: [0] })).toThrow(/ngrams/);
  });
});
