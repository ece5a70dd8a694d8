import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** File name of the bundled public-domain corpus (see data/README.md). */
export const DEFAULT_CORPUS = 'kjv-genesis-leviticus.txt';

function moduleDir(): string {
  if (typeof __filename === 'string' && __filename.length > 0) return dirname(__filename);
  return dirname(fileURLToPath(import.meta.url));
}

/**
 * Path of the bundled corpus: `data/` of this package, found by walking up from this module
 * (src/demo/ in the repository, dist/ when installed).
 */
export function defaultCorpusPath(): string {
  let dir = moduleDir();
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'data', DEFAULT_CORPUS);
    if (existsSync(candidate)) return candidate;
    dir = resolve(dir, '..');
  }
  throw new Error(`demo corpus ${DEFAULT_CORPUS} not found in a data/ folder above ${moduleDir()}; pass corpusPath`);
}

/** Byte-level tokens of a text file (vocabulary 256: no tokenizer to train or ship). */
export function loadByteCorpus(path: string): Uint8Array {
  const bytes = readFileSync(path);
  if (bytes.length < 1024) throw new Error(`corpus ${path} has only ${bytes.length} bytes; need at least 1024`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Splits into train / validation at `fraction` (the validation tail is never trained on). */
export function splitCorpus(tokens: Uint8Array, validationFraction = 0.05): { train: Uint8Array; validation: Uint8Array } {
  const cut = Math.floor(tokens.length * (1 - validationFraction));
  return { train: tokens.subarray(0, cut), validation: tokens.subarray(cut) };
}

export function decodeBytes(tokens: ArrayLike<number>): string {
  return Buffer.from(Uint8Array.from(tokens)).toString('latin1');
}

/**
 * log p(byte) of the bytes' frequencies, add-one smoothed: the output bias the demo LM starts
 * from. A model whose bias starts at zero first learns these frequencies through one direction
 * shared by every token's hidden state (Adam moves each bias entry by at most the learning
 * rate per step, far slower than that shared direction grows); the router then sees the same
 * input for every token and sends them all to the same experts, which no aux loss can undo.
 */
export function unigramLogProbs(tokens: Uint8Array): Float32Array {
  const counts = new Float64Array(256).fill(1);
  for (const t of tokens) counts[t]! += 1;
  const total = tokens.length + 256;
  return Float32Array.from(counts, (c) => Math.log(c / total));
}
