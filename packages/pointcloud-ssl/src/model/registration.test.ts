import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// backbone.ts registers SerializedMambaUNet when imported; a `sideEffects: false` package.json
// lets the bundler drop that call from dist (tsup warned so), and `model.name` would then name
// no model. Checked on the built bundle that users install.
describe('model registration in the built bundle', () => {
  const dist = path.resolve(import.meta.dirname, '../../dist/index.js');

  it('keeps the registering call', () => {
    expect(readFileSync(dist, 'utf8')).toMatch(/registerModel\(\s*["']SerializedMambaUNet["']/);
  });

  it('lists the model after importing the package', async () => {
    const pkg = (await import(dist)) as { listModels(): string[] };
    expect(pkg.listModels()).toContain('SerializedMambaUNet');
  });
});
