import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheEntry, TierError } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { describe, expect, it } from 'vitest';
import { createPgliteTier, L3_ERROR_CODES, PostgresTier } from '../src/index.js';

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

  it('declares scope local (process-local), so the orchestrator sends it bus invalidations', async () => {
    const tier = await createPgliteTier({ sweepIntervalMs: 0 });
    try {
      expect(tier.scope).toBe('local');
      const db = await tier.database();
      // A drizzle database over PGlite is recognised as local too; a server one stays shared.
      expect(new PostgresTier({ db, sweepIntervalMs: 0 }).scope).toBe('local');
      expect(
        new PostgresTier({ connectionString: 'postgres://x@127.0.0.1/x', sweepIntervalMs: 0 }).scope,
      ).toBe('shared');
      expect(new PostgresTier({ db, scope: 'shared', sweepIntervalMs: 0 }).scope).toBe('shared');
    } finally {
      await tier.close();
    }
  });

  it('keeps the coherence rules on PGlite: versions, tombstones, clear, expire, codec types', async () => {
    const tier = await createPgliteTier({ sweepIntervalMs: 0, schema: 'bgc_pglite_coh' });
    const entry = <T>(value: T, version?: number): CacheEntry<T> => {
      const now = Date.now();
      return { value, freshUntil: now + 60_000, staleUntil: now + 120_000, createdAt: now, version };
    };
    try {
      const loadStarted = nextVersion();
      await tier.set('k', entry('v0', nextVersion()));
      expect(await tier.delete('k', { version: nextVersion(), tombstoneMs: 60_000 })).toBe(true);
      await tier.set('k', entry('stale-load', loadStarted));
      expect(await tier.get('k')).toBeUndefined();
      const newer = nextVersion();
      await tier.setMany([
        { key: 'k', entry: entry({ d: new Date(0), m: new Map([[1, 2n]]) }, newer) },
        { key: 'k2', entry: entry(new Set(['a']), newer) },
      ]);
      const [k, k2] = await tier.getMany(['k', 'k2']);
      expect(k?.value).toEqual({ d: new Date(0), m: new Map([[1, 2n]]) });
      expect(k?.version).toBe(newer);
      expect(k2?.value).toEqual(new Set(['a']));
      expect(await tier.expire(['k'], newer)).toBe(1);
      expect((await tier.get('k'))!.freshUntil).toBeLessThanOrEqual(Date.now());
      await tier.clear();
      await tier.set('k3', entry('stale-load', newer));
      expect(await tier.getMany(['k', 'k2', 'k3'])).toEqual([undefined, undefined, undefined]);
      await tier.set('k3', entry('after', nextVersion()));
      expect((await tier.get('k3'))?.value).toBe('after');
    } finally {
      await tier.close();
    }
  });

  it('feeds ComexStat rows into the aggregates of a migrated embedded database, in its own schema', async () => {
    const tier = await createPgliteTier({ sweepIntervalMs: 0, schema: 'bgc_demo_run1' });
    try {
      const store = await tier.aggregatesStore();
      expect(store.schema).toBe('bgc_demo_run1');
      const rows = [
        { flow: 'exp' as const, year: 2024, month: 3, ncm: '12019000', countryCode: '160', fob: 100, kg: 10 },
        { flow: 'exp' as const, year: 2024, month: 3, ncm: '26011100', countryCode: '160', fob: 300, kg: 30 },
      ];
      expect(await store.upsertComexStatRows(rows)).toBe(2);
      expect((await store.refreshAggregates()).refreshed).toBe(true);
      expect((await store.topNcms(1)).map((r) => r.ncm)).toEqual(['26011100']);
      await store.close();
      // Closing the store leaves the tier's connection open.
      expect(await tier.get('anything')).toBeUndefined();
    } finally {
      await tier.close();
    }
  });
});
