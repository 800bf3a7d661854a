import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * The tier's Lua scripts. Every one touches one entry key, plus (for writes) the "cleared at"
 * marker of the entry's hash slot, so they run unchanged under Redis Cluster. They read an entry's
 * version from the first bytes of its envelope (`{"v":1,"n":<version>,...`) with `GETRANGE`, never
 * copying the value into Lua.
 */

/**
 * Compare-and-set. KEYS: entry, cleared-at marker. ARGV: version, envelope, PX ms, check marker
 * (`1` for a versioned write). Stores the envelope unless the stored entry or tombstone has a
 * higher version, or the marker is above the version; with PX <= 0 (an entry already expired)
 * deletes the stored entry under the same conditions. Returns 1 when written, 0 when refused.
 */
export const SET_SCRIPT = `
local v = tonumber(ARGV[1])
if ARGV[4] == '1' then
  local c = redis.call('get', KEYS[2])
  if c then
    c = tonumber(c)
    if c and c > v then return 0 end
  end
end
local head = redis.call('getrange', KEYS[1], 0, 47)
if head ~= '' then
  local n = string.match(head, '^{"v":1,"n":(%d+)')
  if n and tonumber(n) > v then return 0 end
end
if tonumber(ARGV[3]) <= 0 then
  redis.call('del', KEYS[1])
else
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`;

/**
 * {@link SET_SCRIPT} for many entries of one hash slot in one call (a batch write: one script run
 * instead of one per entry; `RedisTier.setMany` sends up to 50 a run). KEYS: the slot's cleared-at
 * marker, then the entry keys. ARGV: for each entry key in order, its version, envelope, PX ms and
 * check-marker flag. Each entry is decided as SET_SCRIPT decides it, in order (a key given twice:
 * the later decides against the earlier); the marker is read once, as nothing else runs
 * meanwhile. Returns how many were written.
 */
export const SET_MANY_SCRIPT = `
local c = tonumber(redis.call('get', KEYS[1]) or '')
local written = 0
for i = 2, #KEYS do
  local a = (i - 2) * 4
  local v = tonumber(ARGV[a + 1])
  local ok = not (ARGV[a + 4] == '1' and c and c > v)
  if ok then
    local head = redis.call('getrange', KEYS[i], 0, 47)
    if head ~= '' then
      local n = string.match(head, '^{"v":1,"n":(%d+)')
      if n and tonumber(n) > v then ok = false end
    end
  end
  if ok then
    if tonumber(ARGV[a + 3]) <= 0 then
      redis.call('del', KEYS[i])
    else
      redis.call('set', KEYS[i], ARGV[a + 2], 'PX', ARGV[a + 3])
    end
    written = written + 1
  end
end
return written`;

/**
 * Versioned delete. KEYS: entry. ARGV: version, tombstone, PX ms of the tombstone (<= 0: no
 * tombstone, plain delete). Leaves the stored entry or tombstone alone when its version is higher.
 * Returns 1 when a (non-tombstone) entry was removed, else 0.
 */
export const DELETE_SCRIPT = `
local head = redis.call('getrange', KEYS[1], 0, 63)
if head == '' then
  if tonumber(ARGV[3]) > 0 then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
  return 0
end
local n = string.match(head, '^{"v":1,"n":(%d+)')
if n and tonumber(n) > tonumber(ARGV[1]) then return 0 end
local existed = 1
if string.find(head, ',"x":1}', 1, true) then existed = 0 end
if tonumber(ARGV[3]) > 0 then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('del', KEYS[1])
end
return existed`;

/**
 * Logical expiry. KEYS: entry. ARGV: now (epoch ms), version ('' for any). Rewrites the envelope's
 * freshUntil to now, keeping its stale-until, Redis TTL and everything else; leaves alone an
 * entry already stale, a tombstone, and an entry of a higher version. An envelope from before
 * versions (no "n") is deleted instead. Returns 1 when the entry was expired (or deleted), else 0.
 */
export const EXPIRE_SCRIPT = `
local cur = redis.call('get', KEYS[1])
if not cur then return 0 end
local prefix, n, f = string.match(cur, '^({"v":1,"n":(%d+),"f":)([^,]+),')
if not prefix then
  if string.find(cur, '^{"v":1,"n":%d+,"x":1}') then return 0 end
  redis.call('del', KEYS[1])
  return 1
end
if ARGV[2] ~= '' and tonumber(n) > tonumber(ARGV[2]) then return 0 end
local fv = tonumber(f)
if not fv or fv <= tonumber(ARGV[1]) then return 0 end
redis.call('set', KEYS[1], prefix .. ARGV[1] .. string.sub(cur, string.len(prefix) + string.len(f) + 1), 'KEEPTTL')
return 1`;

/**
 * One batch of a versioned clear. KEYS: entry keys, all in one hash slot (one node under Cluster).
 * ARGV: the clear's version. Unlinks each key whose stored version (entry or tombstone) is below
 * it; keeps those of an equal or higher version (a delete or write that landed before an older
 * clear). A key without a readable version (an envelope from before versions, a foreign value, a
 * key of another type) is removed, as before. Returns the number of keys removed.
 */
export const CLEAR_BATCH_SCRIPT = `
local v = tonumber(ARGV[1])
local gone = {}
for i = 1, #KEYS do
  -- pcall: a key of another type (not a string) answers an error table; it is removed.
  local head = redis.pcall('getrange', KEYS[i], 0, 47)
  local n = type(head) == 'string' and string.match(head, '^{"v":1,"n":(%d+)')
  if not n or tonumber(n) < v then gone[#gone + 1] = KEYS[i] end
end
for i = 1, #gone, 1000 do
  redis.call('unlink', unpack(gone, i, math.min(i + 999, #gone)))
end
return #gone`;

/** Raises a cleared-at marker to ARGV[1] (never lowers it). KEYS: marker. */
export const CLEAR_MARK_SCRIPT = `
local c = tonumber(redis.call('get', KEYS[1]) or '')
if not c or c < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end
return 1`;

/** A Lua script and its SHA1 (the name `EVALSHA` calls it by). */
export interface CachedScript {
  readonly lua: string;
  readonly sha: string;
}

/** {@link CachedScript} of `lua`. */
export function cachedScript(lua: string): CachedScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** The compare-and-set script, called by SHA on the single-write path (see {@link evalCached}). */
export const SET = cachedScript(SET_SCRIPT);
/** The versioned delete script, called by SHA (see {@link evalCached}). */
export const DELETE = cachedScript(DELETE_SCRIPT);

/**
 * Whether `error` is Redis' `NOSCRIPT` reply: the node has not (or no longer, after `SCRIPT
 * FLUSH`, a restart or a failover to a replica that never saw it) the script in its cache.
 */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Runs `script` with `EVALSHA` straight on the client (no ioredis `Script` wrapper: its command
 * subclass, argument copies and extra promise cost ~4.5 KB a call), and with `EVAL` when the node
 * answers `NOSCRIPT` (which also loads it there; under Cluster the command goes to the key's
 * node, so each node is loaded on its first miss). Not for the hot path's own write, which
 * inlines the same fallback in its one `.then` (`RedisTier.set`).
 */
export function evalCached(
  client: Redis | Cluster,
  script: CachedScript,
  numberOfKeys: number,
  ...args: (string | number)[]
): Promise<unknown> {
  return client.evalsha(script.sha, numberOfKeys, ...args).catch((error: unknown) => {
    if (!isNoScript(error)) throw error;
    return client.eval(script.lua, numberOfKeys, ...args);
  });
}

/** The tier's commands once defined on a client (ioredis `defineCommand`: EVALSHA, EVAL on NOSCRIPT). */
export interface TierScripts {
  bgcL2Set(
    entryKey: string,
    markerKey: string,
    version: number,
    text: string,
    pxMs: number,
    checkMarker: string,
  ): Promise<number>;
  /** {@link SET_MANY_SCRIPT}: `numberOfKeys` keys (the marker, then the entries), then 4 values per entry. */
  bgcL2SetMany(numberOfKeys: number, ...keysThenValues: (string | number)[]): Promise<number>;
  bgcL2Delete(entryKey: string, version: number, tombstone: string, pxMs: number): Promise<number>;
  bgcL2Expire(entryKey: string, now: number, version: string): Promise<number>;
  bgcL2ClearMark(markerKey: string, version: number): Promise<number>;
  /** {@link CLEAR_BATCH_SCRIPT}: `numberOfKeys` entry keys of one slot, then the clear's version. */
  bgcL2ClearBatch(numberOfKeys: number, ...keysThenVersion: (string | number)[]): Promise<number>;
}

/**
 * Defines the scripts on `client` (once per client; a client shared by several tiers gets them
 * once), for pipelines (batch writes, deletes, expiries) and the rarer single calls (clear). The
 * single set and delete call {@link evalCached} instead.
 */
export function defineTierScripts(client: Redis | Cluster): void {
  const c = client as unknown as Record<string, unknown>;
  if (typeof c.bgcL2Set === 'function') return;
  client.defineCommand('bgcL2Set', { numberOfKeys: 2, lua: SET_SCRIPT });
  client.defineCommand('bgcL2Delete', { numberOfKeys: 1, lua: DELETE_SCRIPT });
  client.defineCommand('bgcL2Expire', { numberOfKeys: 1, lua: EXPIRE_SCRIPT });
  client.defineCommand('bgcL2ClearMark', { numberOfKeys: 1, lua: CLEAR_MARK_SCRIPT });
  // Variable key count: the first argument of each call is the number of keys.
  client.defineCommand('bgcL2ClearBatch', { lua: CLEAR_BATCH_SCRIPT });
  client.defineCommand('bgcL2SetMany', { lua: SET_MANY_SCRIPT });
}
