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
    expect(hashToken('盗窃')).toBe(hashToken('盗窃'));
    expect(hashToken('盗窃')).not.toBe(hashToken('窃盗'));
    const f = hashedFeatures('被告人盗窃财物', 64);
    expect(f.length).toBe(7 + 6);
    expect([...f].every((x) => x >= 0 && x < 64)).toBe(true);
    expect(() => hashedFeatures('x', 0)).toThrow(/buckets/);
    expect(() => tokenize('x', { ngrams: [0] })).toThrow(/ngrams/);
  });
});
