import { defineConfig } from 'tsup';

const shared = { dts: true, sourcemap: true, target: 'node20', splitting: false } as const;

export default defineConfig([
  // One chunked build: the classes behind /internal are the root's own (instanceof agrees).
  {
    ...shared,
    splitting: true,
    entry: ['src/index.ts', 'src/internal.ts', 'src/simulator/index.ts'],
    format: ['esm', 'cjs'],
    clean: true,
  },
  // The CLI is a bin (ESM only): it detects being run directly through import.meta.url.
  { ...shared, entry: ['src/cli.ts'], format: ['esm'], clean: false },
]);
