import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // tfjs-core's gradient and chained-op registrations are not in its Node bundle and
  // cannot be loaded by Node's ESM loader (extension-less imports): bundle them here,
  // as the @tensorflow/tfjs union package does. They share tfjs-core's global engine.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\//],
});
