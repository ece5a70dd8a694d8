import { defineConfig } from 'vitest/config';

/**
 * `KILN_TEST_BACKEND=webgpu` (`pnpm test:webgpu`) runs every command on WebGPU against
 * kiln-native, skipped with the reason printed where no adapter exists.
 */
const WEBGPU_SUITES = ['src/webgpu.e2e.test.ts'];

export default defineConfig(async () => {
  const include = process.env.KILN_TEST_BACKEND ? await (await import('@kiln/tensor')).suitesForTestBackend(WEBGPU_SUITES) : undefined;
  return {
    test: {
      ...(include ? { include, passWithNoTests: true } : {}),
      testTimeout: 120_000,
      hookTimeout: 60_000,
      // The CLI tests spawn the built `kiln` binary; run files one at a time so their
      // child processes do not fight over the two cores.
      fileParallelism: false,
    },
  };
});
