import { defineConfig } from 'vitest/config';

export interface PackageTestOptions {
  /** Extra time for integration tests that start real servers, in ms. @default 20000 */
  testTimeout?: number;
  /** Files excluded from the coverage figure (CLIs run as separate processes, type-only files). */
  coverageExclude?: string[];
}

/** The vitest configuration every package shares: v8 coverage over src/, 90% statements. */
export function packageTestConfig(options: PackageTestOptions = {}) {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: options.testTimeout ?? 20_000,
      hookTimeout: 60_000,
      pool: 'forks',
      coverage: {
        provider: 'v8',
        include: ['src/**/*.ts'],
        exclude: ['src/**/*.d.ts', ...(options.coverageExclude ?? [])],
        reporter: ['text-summary', 'json-summary'],
        thresholds: { statements: 90 },
      },
    },
  });
}
