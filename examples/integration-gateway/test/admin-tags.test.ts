// POST /admin/cache/invalidate with tags and modes, in process (Fastify inject) over a real
// MultiLevelCache on a memory tier: what is deleted, what is expired (still a fail-safe fallback),
// and the 400s of a bad body, key or tag, before anything is invalidated.
import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/server.js';

const TOKEN = 'a-long-enough-admin-token-0123';
const caches: MultiLevelCache[] = [];
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close();
});

async function setup() {
  const cache = new MultiLevelCache({ tiers: [new MemoryTier()], staleTtlMs: 3_600_000 });
  caches.push(cache);
  const app = createApp({
    cache,
    fetchMonth: async () => ({ rows: [], level: 'l1', stale: false }),
    adminToken: TOKEN,
    logger: pino({ level: 'silent' }),
  });
  const put = (key: string, tags: string[]) => cache.set(key, { rows: [key] }, { ttlMs: 3_600_000, tags });
  await put('comexstat:exp:2024:3:12019000:160', ['comexstat:ncm:12019000', 'comexstat:year:2024']);
  await put('comexstat:exp:2025:3:12019000:160', ['comexstat:ncm:12019000', 'comexstat:year:2025']);
  await put('comexstat:exp:2025:3:09011110:249', ['comexstat:ncm:09011110', 'comexstat:year:2025']);
  await put('comexstat:exp:2023:1:09011110:249', ['comexstat:ncm:09011110', 'comexstat:year:2023']);
  const invalidate = (payload: unknown) =>
    app.inject({
      method: 'POST',
      url: '/admin/cache/invalidate',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  return { cache, app, invalidate };
}

describe('admin invalidation by tag', () => {
  it('deletes every entry carrying one of the tags, and only those', async () => {
    const { cache, app, invalidate } = await setup();
    const r = await invalidate({ tags: ['comexstat:ncm:12019000'] });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ invalidated: 0, tags: 1, mode: 'delete' });
    expect((await cache.get('comexstat:exp:2024:3:12019000:160')).value).toBeUndefined();
    expect((await cache.get('comexstat:exp:2025:3:12019000:160')).value).toBeUndefined();
    expect((await cache.get('comexstat:exp:2025:3:09011110:249')).value).toEqual({
      rows: ['comexstat:exp:2025:3:09011110:249'],
    });
    // Keys and tags together, duplicates counted once.
    const both = await invalidate({
      keys: ['comexstat:exp:2023:1:09011110:249', 'comexstat:exp:2023:1:09011110:249'],
      tags: ['comexstat:year:2025', 'comexstat:year:2025'],
    });
    expect(both.json()).toEqual({ invalidated: 1, tags: 1, mode: 'delete' });
    expect((await cache.get('comexstat:exp:2025:3:09011110:249')).value).toBeUndefined();
    expect((await cache.get('comexstat:exp:2023:1:09011110:249')).value).toBeUndefined();
    await app.close();
  });

  it('expire mode keeps the values as stale fallbacks (keys and tags)', async () => {
    const { cache, app, invalidate } = await setup();
    const r = await invalidate({
      tags: ['comexstat:year:2025'],
      keys: ['comexstat:exp:2024:3:12019000:160'],
      mode: 'expire',
    });
    expect(r.json()).toEqual({ invalidated: 1, tags: 1, mode: 'expire' });
    for (const key of [
      'comexstat:exp:2025:3:12019000:160',
      'comexstat:exp:2025:3:09011110:249',
      'comexstat:exp:2024:3:12019000:160',
    ]) {
      const got = await cache.get(key, { allowStale: true });
      expect(got.value).toEqual({ rows: [key] });
      expect(got.stale).toBe(true);
    }
    // The untouched entry is still fresh; a load of an expired one is a refresh over the stale value.
    expect((await cache.get('comexstat:exp:2023:1:09011110:249')).stale).toBe(false);
    const failed = await cache.getOrLoad('comexstat:exp:2025:3:12019000:160', async () => {
      throw new Error('upstream down');
    });
    expect(failed).toMatchObject({ value: { rows: ['comexstat:exp:2025:3:12019000:160'] }, stale: true });
    await app.close();
  });

  it.each([
    ['an empty body', {}, 'E_INVALID_PARAMETER', /Parameter keys is missing/],
    ['empty lists', { keys: [], tags: [] }, 'E_INVALID_PARAMETER', /Parameter keys is invalid/],
    ['tags not a list', { tags: 'comexstat:year:2025' }, 'E_INVALID_PARAMETER', /Parameter tags is invalid/],
    ['a tag too long', { tags: ['x'.repeat(257)] }, 'E_INVALID_PARAMETER', /Parameter tags is invalid/],
    ['too many tags', { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }, 'E_INVALID_PARAMETER', /tags/],
    [
      'an unknown mode',
      { tags: ['a'], mode: 'purge' },
      'E_INVALID_PARAMETER',
      /Parameter mode is invalid: expected delete or expire/,
    ],
    [
      'an unknown field',
      { tags: ['a'], flush: true },
      'E_INVALID_PARAMETER',
      /Parameter flush is not accepted/,
    ],
    ['a tag with a control character', { tags: ['ok', 'bad\u0007tag'] }, 'E_INVALID_TAG', /tag/i],
    [
      'a bad key beside good tags',
      { keys: ['bad key\n'], tags: ['comexstat:year:2025'] },
      'E_INVALID_KEY',
      /key/i,
    ],
  ])('400 for %s, nothing invalidated', async (_what, body, code, message) => {
    const { cache, app, invalidate } = await setup();
    const r = await invalidate(body);
    expect(r.statusCode).toBe(400);
    expect(r.headers['cache-control']).toBe('no-store');
    const error = (r.json() as { error: { code: string; message: string } }).error;
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    for (const key of ['comexstat:exp:2024:3:12019000:160', 'comexstat:exp:2025:3:09011110:249'])
      expect(await cache.get(key)).toMatchObject({ value: { rows: [key] }, stale: false });
    await app.close();
  });

  it('400 for a body that is not JSON', async () => {
    const { app, invalidate } = await setup();
    const r = await invalidate('{"tags": [');
    expect(r.statusCode).toBe(400);
    expect((r.json() as { error: { code: string } }).error.code).toMatch(/^E_|^FST_/);
    await app.close();
  });
});
