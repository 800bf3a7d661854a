import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TierError } from '@bgc/cache-core';
import { describe, expect, it } from 'vitest';
import { createPgliteTier, L3_ERROR_CODES } from '../src/index.js';

describe('createPgliteTier', () => {
  it('persists to its data directory across restarts, and sweeps like the server tier', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bgc-l3-pglite-'));
    try {
      const first = await createPgliteTier({ dataDir: dir, sweepIntervalMs: 0 });
      const now = Date.now();
      await first.set('comexstat:exp:2024:03:12019000:160', {
        value: { fob: 1 },
        freshUntil: now + 60_000,
        staleUntil: now + 120_000,
      });
      await first.set('gone', { value: 1, freshUntil: now - 10, staleUntil: now - 5 });
      expect(await first.sweepExpired()).toEqual({ deleted: 1, skipped: false });
      await first.close();
      await expect(first.get('x')).rejects.toMatchObject({ code: L3_ERROR_CODES.closed });

      const second = await createPgliteTier({ dataDir: dir, sweepIntervalMs: 0 });
      expect((await second.get('comexstat:exp:2024:03:12019000:160'))?.value).toEqual({ fob: 1 });
      expect(await (await second.database()).execute('SELECT 1')).toBeDefined();
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects with a TierError when the data directory cannot be used', async () => {
    await expect(createPgliteTier({ dataDir: '/proc/bgc-no-such-dir/db' })).rejects.toBeInstanceOf(TierError);
  });
});
