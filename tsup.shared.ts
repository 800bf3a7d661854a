import { defineConfig, type Options } from 'tsup';

/**
 * The build every published package shares: ESM + CJS with `.d.ts`/`.d.cts` per format, source
 * maps, Node 20. `overrides` adds what one package needs (e.g. `shims` for `import.meta.url` in CJS).
 */
export function packageBuild(entry: string[], overrides: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    splitting: false,
    ...overrides,
  });
}
