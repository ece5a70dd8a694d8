/**
 * Tokenization for Chinese (character n-grams: Chinese has no spaces, and character
 * bigrams are the standard strong baseline for CAIL) and for space-separated languages
 * (lower-cased word n-grams), plus feature hashing so models need no vocabulary file.
 */

export type TokenMode = 'auto' | 'char' | 'word';

export interface TokenizeOptions {
  /** 'auto' picks 'char' when at least 30 % of the letters are CJK ideographs. */
  mode?: TokenMode;
  /** n-gram orders to emit; default [1, 2]. */
  ngrams?: number[];
}

const CJK = /[\u3400-\u9fff\uf900-\ufaff]/u;

export function detectMode(text: string): 'char' | 'word' {
  let cjk = 0;
  let letters = 0;
  for (const ch of text) {
    if (/\s/u.test(ch) || /[\p{P}\p{S}]/u.test(ch)) continue;
    letters++;
    if (CJK.test(ch)) cjk++;
  }
  return letters > 0 && cjk / letters >= 0.3 ? 'char' : 'word';
}

/** Base units: characters (punctuation and spaces dropped) or lower-cased words. */
export function baseTokens(text: string, mode: TokenMode = 'auto'): string[] {
  const m = mode === 'auto' ? detectMode(text) : mode;
  if (m === 'char') return [...text].filter((ch) => !/[\s\p{P}\p{S}]/u.test(ch));
  return text
    .toLowerCase()
    .split(/[\s\p{P}\p{S}]+/u)
    .filter((w) => w !== '');
}

/** All n-grams of the requested orders, joined with a separator no token contains. */
export function tokenize(text: string, options: TokenizeOptions = {}): string[] {
  const ngrams = options.ngrams ?? [1, 2];
  const units = baseTokens(text, options.mode ?? 'auto');
  const out: string[] = [];
  for (const n of ngrams) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`tokenize: ngrams must be positive integers, got ${n}`);
    for (let i = 0; i + n <= units.length; i++) out.push(units.slice(i, i + n).join('\u0001'));
  }
  return out;
}

/** FNV-1a over UTF-16 code units: fast, deterministic across platforms. */
export function hashToken(token: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < token.length; i++) {
    h ^= token.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Hashed feature ids in [0, buckets) for a text (repeats kept: bag-of-n-grams counts). */
export function hashedFeatures(text: string, buckets: number, options: TokenizeOptions = {}): Int32Array {
  if (!Number.isInteger(buckets) || buckets < 1) throw new Error(`hashedFeatures: buckets must be a positive integer, got ${buckets}`);
  const tokens = tokenize(text, options);
  const out = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) out[i] = hashToken(tokens[i]!) % buckets;
  return out;
}
