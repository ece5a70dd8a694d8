import { defineConfig } from 'vitest/config';

/**
 * `KILN_TEST_BACKEND=webgpu` (`pnpm test:webgpu`) runs these suites a second time on WebGPU,
 * skipped with the reason printed where no adapter exists. (The other suites test the CPU
 * backends, or already check their WebGPU parts in the default run.)
 */
const WEBGPU_SUITES = ['src/read-counter.test.ts', 'src/safetensors.test.ts', 'src/adam.test.ts'];

export default defineConfig(async () => {
  const include = process.env.KILN_TEST_BACKEND ? await (await import('./dist/index.js')).suitesForTestBackend(WEBGPU_SUITES) : undefined;
  return {
    test: {
      ...(include ? { include, passWithNoTests: true } : {}),
      testTimeout: 60_000,
      // Transform tfjs-core's extension-less ESM registration modules (see tsup.config.ts).
      server: { deps: { inline: [/@tensorflow\/tfjs-core\/dist\/(?!tf-core)/] } },
    },
  };
});
