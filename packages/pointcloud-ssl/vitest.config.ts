import { defineConfig } from 'vitest/config';

/**
 * `KILN_TEST_BACKEND=webgpu` (`pnpm test:webgpu`) runs these suites a second time on WebGPU,
 * skipped with the reason printed where no adapter exists: the training steps' read counts.
 */
const WEBGPU_SUITES = ['src/train/device.test.ts'];

export default defineConfig(async () => {
  const include = process.env.KILN_TEST_BACKEND ? await (await import('@kiln/tensor')).suitesForTestBackend(WEBGPU_SUITES) : undefined;
  return {
    test: {
      ...(include ? { include, passWithNoTests: true } : {}),
      testTimeout: 60_000,
    },
  };
});
