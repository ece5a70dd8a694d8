import { defineConfig } from 'tsup';

export default defineConfig({
  // The scene loader thread is its own entry: a SceneStream starts dist/stream-worker.js.
  entry: { index: 'src/index.ts', 'stream-worker': 'src/data/stream-worker.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url in the CJS build too: it locates the worker entry.
  shims: true,
});
