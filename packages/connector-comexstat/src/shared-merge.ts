import { randomUUID } from 'node:crypto';
import type { ComexStatFlow, ComexStatMonthValue } from './comexstat-types.js';
import type { SpacerRedis } from './request-spacer.js';

const ADD_CHUNK = 1000;

/** How long cells other instances wait for stay in Redis if nobody drains them, ms. */
export const PENDING_TTL_MS = 120_000;

const ADD_PENDING = `redis.call('SADD', KEYS[1], unpack(ARGV, 2)); redis.call('PEXPIRE', KEYS[1], ARGV[1]); return 1`;
// Taken when free, or renewed by the instance that holds it.
const CLAIM = `
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('PEXPIRE', KEYS[1], ARGV[1]) return 1 end
if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1], 'NX') then return 1 end
return 0`;
const DRAIN_PENDING = `local m = redis.call('SMEMBERS', KEYS[1]); redis.call('DEL', KEYS[1]); return m`;
// Marks (field ARGV[1] of the flow's marks hash) when, on the Redis clock, a call was sealed or stored.
const MARK = `
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;
// How long ago (ms) a call of the flow was last sealed and last stored; -1: not within MARK_TTL_MS.
const FLOW_STATE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', KEYS[1], 'sealed', 'stored')
local s = tonumber(m[1] or '')
local w = tonumber(m[2] or '')
return { s and (now - s) or -1, w and (now - w) or -1 }`;

// Fields ARGV[2..] (key, value, key, value...) of the flow's answers hash, kept ARGV[1] ms.
const PUT_ANSWERS = `redis.call('HSET', KEYS[1], unpack(ARGV, 2)); redis.call('PEXPIRE', KEYS[1], ARGV[1]); return 1`;
const GET_ANSWERS = `return redis.call('HMGET', KEYS[1], unpack(ARGV))`;

/** How long the answers a call gave to cells other instances waited for stay in Redis, ms. */
export const ANSWERS_TTL_MS = 120_000;

/** How long the sealed/stored marks of a flow last, ms. */
export const MARK_TTL_MS = 300_000;

/** What other instances did lately in a flow (ms ago, `undefined`: nothing within {@link MARK_TTL_MS}). */
export interface FlowState {
  /** A call of the flow was sealed (it took the cells waited for then). */
  sealedAgoMs: number | undefined;
  /** A call's answer of the flow was stored in the shared cache. */
  storedAgoMs: number | undefined;
}

/** A cell another instance waits for. */
export interface PendingCell {
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
}

/**
 * The cross-instance half of the batcher, over Redis: every instance records the cells its users
 * wait for (one set per flow); whichever instance's call is granted first drains the set and adds
 * those cells to its call (as far as the call's size allows, the rest goes back), so one call
 * answers the cluster. Whether a waiting instance's cells were answered meanwhile is read from the
 * shared cache by the batcher (release-aware).
 */
export class SharedMerge {
  /** This instance's id in claims. */
  readonly owner: string = randomUUID();
  constructor(
    private readonly redis: SpacerRedis,
    private readonly keyPrefix: string,
  ) {}

  private key(flow: ComexStatFlow): string {
    return `${this.keyPrefix}${flow}`;
  }

  /** Records cells this instance waits for (one command per 1,000: Lua's unpack has a limit). */
  async add(flow: ComexStatFlow, cells: readonly PendingCell[]): Promise<void> {
    for (let i = 0; i < cells.length; i += ADD_CHUNK) {
      await this.redis.eval(
        ADD_PENDING,
        1,
        this.key(flow),
        PENDING_TTL_MS,
        ...cells.slice(i, i + ADD_CHUNK).map((c) => `${c.ano}|${c.mes}|${c.ncm}|${c.pais}`),
      );
    }
  }

  /**
   * Claims a cluster-wide job (e.g. the release check) for `ttlMs`: `true` for the one instance
   * that should do it, `false` for the others (they read its result from the shared cache). The
   * holder's own next claim renews it (true again), so a job due again while its claim lasts
   * (a short interval, or a clock that runs ahead of Redis's) is not left to nobody.
   */
  async claim(name: string, ttlMs: number): Promise<boolean> {
    const r = await this.redis.eval(
      CLAIM,
      1,
      `${this.keyPrefix}claim:${name}`,
      Math.max(1, Math.round(ttlMs)),
      this.owner,
    );
    return Number(r) === 1;
  }

  /** Marks that a call of the flow was sealed (`'sealed'`) or its answer stored (`'stored'`). */
  async mark(flow: ComexStatFlow, what: 'sealed' | 'stored'): Promise<void> {
    await this.redis.eval(MARK, 1, `${this.key(flow)}:marks`, what, MARK_TTL_MS);
  }

  /** When a call of the flow was last sealed and last stored, anywhere (one round trip). */
  async state(flow: ComexStatFlow): Promise<FlowState> {
    const r = (await this.redis.eval(FLOW_STATE, 1, `${this.key(flow)}:marks`)) as unknown;
    const ago = (v: unknown): number | undefined => {
      const n = Number(v);
      return Number.isFinite(n) && n >= 0 ? n : undefined;
    };
    return Array.isArray(r)
      ? { sealedAgoMs: ago(r[0]), storedAgoMs: ago(r[1]) }
      : { sealedAgoMs: undefined, storedAgoMs: undefined };
  }

  /**
   * Hands the values of cells other instances wait for to them (one hash per flow, one command per
   * 500 cells): their waiters take them from here in one round trip, whatever the cache's tiers
   * are going through (a burst can open their circuits) and without one read per key.
   */
  async putAnswers(
    flow: ComexStatFlow,
    cells: readonly { key: string; value: ComexStatMonthValue }[],
  ): Promise<void> {
    for (let i = 0; i < cells.length; i += ADD_CHUNK / 2) {
      const args: string[] = [];
      for (const c of cells.slice(i, i + ADD_CHUNK / 2)) args.push(c.key, JSON.stringify(c.value));
      await this.redis.eval(PUT_ANSWERS, 1, `${this.key(flow)}:answers`, ANSWERS_TTL_MS, ...args);
    }
  }

  /** The values {@link putAnswers} holds for `keys` (`undefined` where none, or malformed). */
  async getAnswers(
    flow: ComexStatFlow,
    keys: readonly string[],
  ): Promise<(ComexStatMonthValue | undefined)[]> {
    const out: (ComexStatMonthValue | undefined)[] = [];
    for (let i = 0; i < keys.length; i += ADD_CHUNK) {
      const part = keys.slice(i, i + ADD_CHUNK);
      const r = (await this.redis.eval(GET_ANSWERS, 1, `${this.key(flow)}:answers`, ...part)) as unknown;
      for (let j = 0; j < part.length; j++) out.push(parseAnswer(Array.isArray(r) ? r[j] : undefined));
    }
    return out;
  }

  /** Takes every cell waited for in the flow (well-formed ones only). */
  async drain(flow: ComexStatFlow): Promise<PendingCell[]> {
    const members = (await this.redis.eval(DRAIN_PENDING, 1, this.key(flow))) as unknown;
    if (!Array.isArray(members)) return [];
    const out: PendingCell[] = [];
    for (const m of members) {
      const [ano, mes, ncm, pais] = String(m).split('|');
      const y = Number(ano);
      const mo = Number(mes);
      if (!Number.isInteger(y) || y < 1997 || !(mo >= 1 && mo <= 12)) continue;
      if (!/^\d{8}$/.test(ncm ?? '') || !/^\d{3}$/.test(pais ?? '')) continue;
      out.push({ ano: y, mes: mo, ncm: ncm as string, pais: pais as string });
    }
    return out;
  }
}

/** A value of the answers hash, `undefined` unless well-formed. */
function parseAnswer(v: unknown): ComexStatMonthValue | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    const x = JSON.parse(v) as Partial<ComexStatMonthValue> | null;
    if (
      x !== null &&
      typeof x === 'object' &&
      (x.status === 'ok' || x.status === 'not_published') &&
      Array.isArray(x.rows) &&
      typeof x.fetchedAt === 'number'
    )
      return { status: x.status, rows: x.rows, fetchedAt: x.fetchedAt };
  } catch {}
  return undefined;
}
