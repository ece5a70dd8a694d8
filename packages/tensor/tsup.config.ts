import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  // The chained-op methods (`x.sum()`, `x.slice()`) are declared by module augmentation in a
  // tfjs-core file that the bundled declarations would not reference; import it so consumers
  // of @kiln/tensor get the methods' types along with the runtime registration.
  dts: { banner: "import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';" },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // tfjs-core's gradient and chained-op registrations are not in its Node bundle and
  // cannot be loaded by Node's ESM loader (extension-less imports): bundle them here,
  // as the @tensorflow/tfjs union package does. They share tfjs-core's global engine.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\//],
});
