import { defineConfig } from 'vitest/config';

/**
 * `KILN_TEST_BACKEND=webgpu` (`pnpm test:webgpu`) runs these suites a second time on WebGPU,
 * skipped with the reason printed where no adapter exists: the device paths of the embedding
 * bag and the optimizer, and a panel trained on the device.
 */
const WEBGPU_SUITES = ['src/models/device.test.ts'];

export default defineConfig(async () => {
  const include = process.env.KILN_TEST_BACKEND ? await (await import('@kiln/tensor')).suitesForTestBackend(WEBGPU_SUITES) : undefined;
  return {
    test: {
      ...(include ? { include, passWithNoTests: true } : {}),
      testTimeout: 60_000,
    },
  };
});
