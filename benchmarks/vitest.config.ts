import { defineConfig } from 'vitest/config';

// Unit tests of the pure helpers only (no network, no services): the scenarios themselves are
// run by `pnpm bench`, not by the test suite.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 10_000,
    pool: 'forks',
  },
});
