import { defineConfig } from 'vitest/config';

/**
 * `KILN_TEST_BACKEND=webgpu` (`pnpm test:webgpu`) runs these suites a second time on WebGPU,
 * skipped with the reason printed where no adapter exists: every op's WGSL kernel against
 * its reference, forward and backward.
 */
const WEBGPU_SUITES = ['src/backends.test.ts'];

export default defineConfig(async () => {
  const include = process.env.KILN_TEST_BACKEND ? await (await import('@kiln/tensor')).suitesForTestBackend(WEBGPU_SUITES) : undefined;
  return {
    test: {
      ...(include ? { include, passWithNoTests: true } : {}),
      testTimeout: 60_000,
      // Transform tfjs-core's extension-less ESM registration modules (see tsup.config.ts).
      server: { deps: { inline: [/@tensorflow\/tfjs-core\/dist\/(?!tf-core)/] } },
    },
  };
});
