import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // The CLI tests spawn the built `kiln` binary; run files one at a time so their
    // child processes do not fight over the two cores.
    fileParallelism: false,
  },
});
