import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/eval-job.ts', 'src/series-reader.ts', 'src/main.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url in the CJS build too: the server finds its worker and public/ with it.
  shims: true,
});
