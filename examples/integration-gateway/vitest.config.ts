import { defineConfig } from 'vitest/config';

// Two groups. Most files spend their time waiting (spaced upstream calls, process start-ups,
// timers), so they run two at a time. The two that load the machine (the cold start at 1,000
// req/s over three gateway processes, and the demo that warms 12,000 keys into PGlite) run after
// them, one at a time: their figures must not depend on a neighbour's load.
const HEAVY = ['test/cold-start-load.test.ts', 'test/demo.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'gateway',
          include: ['test/**/*.test.ts'],
          exclude: HEAVY,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'gateway-heavy',
          include: HEAVY,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
