import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFolder, UnsafePathError } from './data-folder.js';

describe('DataFolder', () => {
  const folder = new DataFolder(mkdtempSync(join(tmpdir(), 'kiln-folder-')));

  it('accepts plain names and keeps them inside the folder', () => {
    expect(folder.artifactPath('run-1', 'model.safetensors')).toBe(join(folder.root, 'artifacts', 'run-1', 'model.safetensors'));
  });

  it('refuses every way out of the folder', () => {
    for (const name of ['..', '../x', '..\\x', '/etc/passwd', '.hidden', 'a/b', 'a\0b', '', 'x'.repeat(129), 'a..b']) {
      expect(() => folder.artifactPath('run-1', name), JSON.stringify(name)).toThrow(UnsafePathError);
    }
    expect(() => folder.artifactPath('../../etc', 'passwd')).toThrow(UnsafePathError);
    expect(() => folder.inside('..', 'x')).toThrow('leaves the data folder');
    expect(() => folder.inside('')).toThrow('leaves the data folder');
  });
});
