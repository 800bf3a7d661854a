import type { CacheEntry } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { beforeAll, expect, it } from 'vitest';
import type { RedisTier } from '../src/redis-tier.js';

/** Two tiers over the same Redis and prefix, each with its own client (two instances). */
export interface TierPair {
  a: RedisTier;
  b: RedisTier;
  /** PTTL (ms) of a key under the tiers' prefix, read by a raw client. */
  pttl(key: string): Promise<number>;
  /** The raw stored text of a key under the tiers' prefix. */
  raw(key: string): Promise<string | null>;
}

const entry = (value: unknown, version?: number, ttlMs = 60_000, staleMs = 60_000): CacheEntry => {
  const now = Date.now();
  const e: CacheEntry = {
    value,
    freshUntil: now + ttlMs,
    staleUntil: now + ttlMs + staleMs,
    createdAt: now,
    ttlMs,
  };
  if (version !== undefined) e.version = version;
  return e;
};

/**
 * The coherence cases of issue 20 on real Redis, written once for standalone and Cluster:
 * versioned compare-and-set, tombstones, load-during-delete and promotion races seen from a
 * second client, clear markers and logical expiry.
 */
export function coherenceCases(setup: () => Promise<TierPair>): void {
  let t: TierPair;
  let n = 0;
  const key = (what: string) => `coh:${what}:${n++}`;
  beforeAll(async () => {
    t = await setup();
  });

  it('never replaces an entry of a higher version; equal and higher versions land', async () => {
    const k = key('cas');
    const v1 = nextVersion();
    const v2 = nextVersion();
    await t.a.set(k, entry('new', v2));
    await t.b.set(k, entry('old', v1));
    expect((await t.a.get(k))?.value).toBe('new');
    expect((await t.b.get(k))?.version).toBe(v2);
    await t.b.set(k, entry('same version again', v2));
    expect((await t.a.get(k))?.value).toBe('same version again');
    const v3 = nextVersion();
    await t.b.set(k, entry('newer', v3));
    expect((await t.a.get(k))?.value).toBe('newer');
    // An unversioned write counts as version 0: it cannot undo a versioned one.
    await t.a.set(k, entry('unversioned'));
    expect((await t.b.get(k))?.value).toBe('newer');
  });

  it('load during delete: the load (version taken before the delete) is refused on both clients', async () => {
    const k = key('load-delete');
    await t.a.set(k, entry('v1', nextVersion()));
    const loadStarted = nextVersion(); // the loader read v1 here...
    const deleteVersion = nextVersion(); // ...the source changed and an admin deleted the key...
    expect(await t.b.delete(k, { version: deleteVersion, tombstoneMs: 30_000 })).toBe(true);
    expect(await t.a.get(k)).toBeUndefined();
    // ...then the slow load ends and writes what it read, from either instance.
    await t.a.set(k, entry('v1 (stale load)', loadStarted));
    await t.b.set(k, entry('v1 (stale load)', loadStarted));
    await t.b.setMany([{ key: k, entry: entry('v1 (stale batch)', loadStarted) }]);
    expect(await t.a.get(k)).toBeUndefined();
    expect(await t.b.get(k)).toBeUndefined();
    expect((await t.a.getMany([k]))[0]).toBeUndefined();
    // The tombstone is tiny, expires by itself, and reads as a miss.
    expect(await t.raw(k)).toBe(`{"v":1,"n":${deleteVersion},"x":1}`);
    const pttl = await t.pttl(k);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(30_000);
    // A load that started after the delete lands.
    await t.a.set(k, entry('v2', nextVersion()));
    expect((await t.b.get(k))?.value).toBe('v2');
  });

  it('promotion race: an entry read from a slower tier before a delete is not promoted after it', async () => {
    const k = key('promotion');
    const l3Entry = entry('from L3', nextVersion());
    await t.a.delete(k, { version: nextVersion() });
    await t.b.set(k, l3Entry); // the late promotion
    expect(await t.a.get(k)).toBeUndefined();
  });

  it('a versioned delete leaves a newer entry alone, and never lowers a tombstone', async () => {
    const k = key('delete-older');
    const old = nextVersion();
    const v = nextVersion();
    await t.a.set(k, entry('newer', v));
    expect(await t.b.delete(k, { version: old })).toBe(false);
    expect((await t.a.get(k))?.value).toBe('newer');
    const high = nextVersion();
    await t.a.delete(k, { version: high });
    await t.b.delete(k, { version: old });
    expect(await t.raw(k)).toBe(`{"v":1,"n":${high},"x":1}`);
    // Deleting a tombstone again does not count as an entry that existed.
    expect(await t.a.delete(k, { version: nextVersion() })).toBe(false);
    // tombstoneMs 0: a plain versioned delete, nothing left behind.
    const k2 = key('no-tombstone');
    await t.a.set(k2, entry('x', nextVersion()));
    expect(await t.a.delete(k2, { version: nextVersion(), tombstoneMs: 0 })).toBe(true);
    expect(await t.raw(k2)).toBeNull();
  });

  it('deleteMany with a version tombstones every key and counts the entries that existed', async () => {
    const keys = [key('dm'), key('dm'), key('dm')];
    const before = nextVersion();
    await t.a.setMany(keys.slice(0, 2).map((k) => ({ key: k, entry: entry(k, nextVersion()) })));
    expect(await t.b.deleteMany(keys, { version: nextVersion() })).toBe(2);
    await t.a.setMany(keys.map((k) => ({ key: k, entry: entry('late', before) })));
    expect((await t.b.getMany(keys)).every((e) => e === undefined)).toBe(true);
  });

  it('clear: a load that started before the clear is refused afterwards, newer and unversioned writes land', async () => {
    const k = key('clear');
    await t.a.set(k, entry('before', nextVersion()));
    const loadStarted = nextVersion();
    await t.b.clear();
    expect(await t.a.get(k)).toBeUndefined();
    await t.a.set(k, entry('stale load', loadStarted));
    await t.b.setMany([{ key: k, entry: entry('stale load', loadStarted) }]);
    expect(await t.b.get(k)).toBeUndefined();
    await t.a.set(k, entry('after', nextVersion()));
    expect((await t.b.get(k))?.value).toBe('after');
    const unversioned = key('clear-unversioned');
    await t.a.set(unversioned, entry('plain'));
    expect((await t.b.get(unversioned))?.value).toBe('plain');
    // A second clear with an older version does not lower the marker, and the marker survives
    // clears; it keeps the newer entry and removes the unversioned one (version 0).
    await t.a.clear({ version: loadStarted - 1 });
    expect((await t.b.get(k))?.value).toBe('after');
    expect(await t.b.get(unversioned)).toBeUndefined();
    const k2 = key('clear-marker-kept');
    await t.a.set(k2, entry('still stale', loadStarted));
    expect(await t.b.get(k2)).toBeUndefined();
  });

  it('a fill after a miss is a plain SET NX: a clear between the miss and the fill hides it from every read, a delete between them refuses it', async () => {
    const k = key('fill-clear');
    const loadStarted = nextVersion();
    expect(await t.a.get(k)).toBeUndefined(); // the miss: the load starts...
    await t.b.clear(); // ...a clear lands while it runs...
    await t.a.set(k, entry('stale fill', loadStarted)); // ...and the load's fill lands after it.
    // Stored by the plain write (the compare-and-set script would have refused it)...
    expect(await t.raw(k)).toContain('stale fill');
    // ...but below the cleared-at marker: a miss on every read path of both clients.
    expect(await t.a.get(k)).toBeUndefined();
    expect(await t.b.get(k)).toBeUndefined();
    expect((await t.b.getMany([k, key('fill-other')]))[0]).toBeUndefined();
    const viaCallbacks = await new Promise((ok, failed) => t.b.getWith(k, { ok, failed }));
    expect(viaCallbacks).toBeUndefined();
    // A write after the clear replaces the hidden entry (the key exists: the script decides).
    await t.b.set(k, entry('after', nextVersion()));
    expect((await t.a.get(k))?.value).toBe('after');
    // Unversioned fills are not compared with the marker, as the script never did.
    const plain = key('fill-unversioned');
    expect(await t.a.get(plain)).toBeUndefined();
    await t.a.set(plain, entry('plain'));
    expect((await t.b.get(plain))?.value).toBe('plain');
    // A delete between the miss and the fill: the fill finds the tombstone, the script refuses it.
    const k2 = key('fill-delete');
    const v0 = nextVersion();
    expect(await t.a.get(k2)).toBeUndefined();
    const deleted = nextVersion();
    await t.b.delete(k2, { version: deleted, tombstoneMs: 30_000 });
    await t.a.set(k2, entry('resurrected', v0));
    expect(await t.raw(k2)).toBe(`{"v":1,"n":${deleted},"x":1}`);
    expect(await t.b.get(k2)).toBeUndefined();
    // The same through setMany (the core batches a turn's fills): a stale fill after a clear is
    // stored but read as a miss, a fill over a tombstone is refused, a fresh one lands.
    const [m1, m2, m3] = [key('fill-many'), key('fill-many'), key('fill-many')];
    const v2 = nextVersion();
    expect(await t.a.getMany([m1, m2, m3])).toEqual([undefined, undefined, undefined]);
    await t.b.clear();
    const tomb = nextVersion();
    await t.b.delete(m2, { version: tomb, tombstoneMs: 30_000 });
    await t.a.setMany([
      { key: m1, entry: entry('stale fill', v2) },
      { key: m2, entry: entry('stale fill', v2) },
    ]);
    expect(await t.raw(m1)).toContain('stale fill');
    expect(await t.raw(m2)).toBe(`{"v":1,"n":${tomb},"x":1}`); // SET NX found it, the script refused
    expect(await t.b.getMany([m1, m2])).toEqual([undefined, undefined]);
    await t.a.setMany([{ key: m3, entry: entry('fresh fill', nextVersion()) }]);
    expect((await t.b.get(m3))?.value).toBe('fresh fill');
    // A newer write between the miss and the fill wins over the fill.
    const k3 = key('fill-newer');
    const v1 = nextVersion();
    expect(await t.a.get(k3)).toBeUndefined();
    await t.b.set(k3, entry('newer', nextVersion()));
    await t.a.set(k3, entry('older fill', v1));
    expect((await t.a.get(k3))?.value).toBe('newer');
  });

  it('clear after a newer delete: the tombstone stays, and an older load cannot resurrect the key', async () => {
    const k = key('clear-after-delete');
    await t.a.set(k, entry('v(-1)', nextVersion()));
    const v0 = nextVersion(); // a load starts (reads the old value)...
    const v1 = nextVersion(); // ...a clear is issued (its message is slow)...
    const v2 = nextVersion(); // ...a delete is issued after it, and reaches Redis first.
    expect(await t.b.delete(k, { version: v2, tombstoneMs: 30_000 })).toBe(true);
    await t.a.clear({ version: v1 });
    expect(await t.raw(k)).toBe(`{"v":1,"n":${v2},"x":1}`);
    expect(await t.pttl(k)).toBeGreaterThan(0);
    // The load ends: its write (version v0 < v1 < v2) is refused, from either client.
    await t.a.set(k, entry('resurrected', v0));
    await t.b.setMany([{ key: k, entry: entry('resurrected', v0) }]);
    expect(await t.a.get(k)).toBeUndefined();
    expect(await t.b.get(k)).toBeUndefined();
    // A write after the delete lands.
    await t.a.set(k, entry('after the delete', nextVersion()));
    expect((await t.b.get(k))?.value).toBe('after the delete');
  });

  it('clear({ version }) across many keys and slots: removes only entries and tombstones below it', async () => {
    const older = Array.from({ length: 60 }, (_, i) => key(`clear-old-${i}`));
    const olderTombs = Array.from({ length: 20 }, (_, i) => key(`clear-old-tomb-${i}`));
    const unversioned = Array.from({ length: 10 }, (_, i) => key(`clear-plain-${i}`));
    const before = nextVersion();
    await t.a.setMany(older.map((k) => ({ key: k, entry: entry('old', before) })));
    await t.a.setMany(unversioned.map((k) => ({ key: k, entry: entry('plain') })));
    await t.a.deleteMany(olderTombs, { version: before, tombstoneMs: 30_000 });
    const clearAt = nextVersion();
    const newer = Array.from({ length: 60 }, (_, i) => key(`clear-new-${i}`));
    const newerTombs = Array.from({ length: 20 }, (_, i) => key(`clear-new-tomb-${i}`));
    await t.b.setMany(newer.map((k) => ({ key: k, entry: entry('new', nextVersion()) })));
    await t.b.deleteMany(newerTombs, { version: nextVersion(), tombstoneMs: 30_000 });
    await t.a.clear({ version: clearAt });
    const raws = async (ks: string[]) => Promise.all(ks.map((k) => t.raw(k)));
    expect((await raws([...older, ...olderTombs, ...unversioned])).every((r) => r === null)).toBe(true);
    expect((await t.b.getMany(newer)).map((e) => e?.value)).toEqual(newer.map(() => 'new'));
    expect((await raws(newerTombs)).every((r) => r?.endsWith(',"x":1}'))).toBe(true);
  });

  it('expire: fresh until now, stale-until and Redis TTL kept; newer versions, stale entries and tombstones untouched', async () => {
    const k = key('expire');
    const v = nextVersion();
    const e = entry({ rows: [1] }, v, 60_000, 600_000);
    await t.a.set(k, e);
    const pttlBefore = await t.pttl(k);
    const at = Date.now();
    expect(await t.b.expire([k, key('expire-missing')], nextVersion())).toBe(1);
    const got = await t.a.get(k);
    expect(got?.value).toEqual({ rows: [1] });
    expect(got?.freshUntil).toBeGreaterThanOrEqual(at - 5);
    expect(got?.freshUntil).toBeLessThanOrEqual(Date.now());
    expect(got?.staleUntil).toBe(e.staleUntil);
    expect(got?.version).toBe(v);
    expect(await t.pttl(k)).toBeGreaterThan(pttlBefore - 5_000);
    // Already stale: nothing to do.
    expect(await t.b.expire([k])).toBe(0);
    // A newer write than the expiry's version is left alone.
    const k2 = key('expire-newer');
    const older = nextVersion();
    await t.a.set(k2, entry('newer', nextVersion()));
    expect(await t.b.expire([k2], older)).toBe(0);
    expect((await t.a.get(k2))?.freshUntil).toBeGreaterThan(Date.now() + 30_000);
    // Tombstones stay tombstones.
    const k3 = key('expire-tomb');
    await t.a.delete(k3, { version: nextVersion() });
    expect(await t.b.expire([k3])).toBe(0);
    expect(await t.raw(k3)).toMatch(/"x":1}$/);
    expect(await t.a.expire([])).toBe(0);
  });
}
