// The built package (dist/, built by `pnpm build` before the tests) exposes the same names to
// import() and require(), and works from CommonJS (keyv's default export differs between them).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(args: string[], script: string): string {
  const out = spawnSync(process.execPath, [...args, '-e', script], { encoding: 'utf8', cwd: root });
  expect(out.stderr).toBe('');
  return out.stdout.trim();
}

describe('built package', () => {
  it('import() and require() expose the same names, and createKeyv works from CommonJS', () => {
    const cjs = run(
      [],
      `const m = require('./dist/index.cjs');
       const { MultiLevelCache } = require('@bgc/cache-core');
       const { MemoryTier } = require('@bgc/cache-l1-memory');
       const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
       const keyv = m.createKeyv(cache);
       keyv.set('k', { a: 1 }).then(() => keyv.get('k')).then(async (v) => {
         await cache.close();
         console.log(JSON.stringify({ names: Object.keys(m).sort(), v }));
       });`,
    );
    const esm = run(
      ['--input-type=module'],
      `const m = await import('./dist/index.js');
       console.log(JSON.stringify(Object.keys(m).sort()));`,
    );
    const parsed = JSON.parse(cjs) as { names: string[]; v: unknown };
    expect(parsed.v).toEqual({ a: 1 });
    expect(parsed.names).toEqual(JSON.parse(esm));
    expect(parsed.names).toEqual(['KeyvStore', 'KeyvTier', 'createKeyv']);
  });
});
