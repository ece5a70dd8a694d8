import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Each file starts its own server process; one file at a time keeps the two cores for it.
    fileParallelism: false,
    // Transform tfjs-core's extension-less ESM registration modules (as @kiln/tensor does).
    server: { deps: { inline: [/@tensorflow\/tfjs-core\/dist\/(?!tf-core)/] } },
  },
});
