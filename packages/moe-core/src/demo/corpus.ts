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
