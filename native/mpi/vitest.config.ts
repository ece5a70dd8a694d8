import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each test launches mpirun with several Node ranks on a 2-core machine.
    testTimeout: 120_000,
    include: ['src/**/*.test.ts'],
  },
});
