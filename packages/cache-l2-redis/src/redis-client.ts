import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ConfigError, envInt, TimeoutError } from '@bgc/cache-core';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/** How to reach Redis when a tier, bus or lock builds its own ioredis client. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]`, `rediss://...` (TLS) or `host:port`. Fields below override it. */
  url?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 6379 */
  port?: number;
  /** ACL user name. @default undefined (the `default` user) */
  username?: string;
  /** Password (never logged nor put in error messages). @default undefined */
  password?: string;
  /** Database index (standalone only). @default 0 */
  db?: number;
  /** `true` (verify certificates) or node:tls options; implied by a `rediss://` URL. @default false */
  tls?: boolean | TlsConnectionOptions;
  /** Cluster startup nodes: when given, a `Cluster` client is built. @default undefined */
  cluster?: readonly { host: string; port: number }[];
  /** A command without a reply after this long rejects (ms). @default 100 */
  commandTimeoutMs?: number;
  /** Connecting gives up after this long (ms). @default 1500 */
  connectTimeoutMs?: number;
  /** Times a command is retried after a reconnect before it rejects. @default 1 */
  maxRetriesPerRequest?: number;
  /** Upper bound of the reconnect backoff (ms); reconnecting never stops. @default 5000 */
  maxReconnectDelayMs?: number;
  /**
   * Seed's `REDIS_POOL_SIZE`. ioredis multiplexes every command over one connection (with
   * pipelining), so it is accepted for compatibility and not used. @default 10
   */
  poolSize?: number;
  /** Connection name shown by `CLIENT LIST`. @default 'bgc-cache' */
  connectionName?: string;
}

/**
 * Reconnect delay for attempt `times` (1-based): exponential from 50 ms, capped, with up to 100 ms
 * of jitter. Never `null`, so ioredis keeps reconnecting (a `null` stops it for good).
 */
export function reconnectDelay(times: number, capMs = 5000): number {
  return Math.min(50 * 2 ** Math.min(Math.max(times - 1, 0), 16), capMs) + Math.floor(Math.random() * 100);
}

/** Host, port, database and query of an address after credentials: never holds an `@`. */
const HOST_PART = /^(\[[0-9A-Fa-f:.]+\]|[^:/?#@[\]\s]*)(?::(\d{0,5}))?(?:\/([^?#@]*))?(?:\?([^#@]*))?$/;
/** The same for an address without credentials, whose query may hold an `@` (`?password=p@ss`). */
const HOST_PART_NO_CREDENTIALS =
  /^(\[[0-9A-Fa-f:.]+\]|[^:/?#@[\]\s]*)(?::(\d{0,5}))?(?:\/([^?#@]*))?(?:\?([^#]*))?$/;
/** Query parameters whose values are secrets. */
const SECRET_PARAMS = /([?&;](?:password|pass|pwd|secret|token|auth|access_token)=)[^&#;]*/gi;

interface SplitAddress {
  /** `redis://` or `rediss://` (lower case), or '' for `host:port`. */
  scheme: string;
  /** What came before the last `@` that is followed by a valid host part, raw. */
  credentials: string | undefined;
  host: string;
  port: string | undefined;
  db: string | undefined;
  query: string | undefined;
}

/**
 * Splits an address into credentials and host part without a URL parser, so that credentials
 * holding `/ @ ? # : %` (base64 passwords hold `/` and `+`) split where a human reads them: at the
 * last `@` followed by a valid host part. `undefined` when no split is valid.
 */
function splitAddress(addr: string): SplitAddress | undefined {
  const m = /^(rediss?:\/\/)?(.*)$/is.exec(addr) as RegExpExecArray;
  const scheme = (m[1] ?? '').toLowerCase();
  const rest = m[2] as string;
  // Without credentials first (an '@' may sit in a ?password= value), then from the last '@' back.
  const candidates = [-1];
  for (let i = rest.lastIndexOf('@'); i !== -1; i = rest.lastIndexOf('@', i - 1)) {
    candidates.push(i);
    if (i === 0) break;
  }
  for (const at of candidates) {
    const hp = at === -1 ? HOST_PART_NO_CREDENTIALS.exec(rest) : HOST_PART.exec(rest.slice(at + 1));
    if (!hp) continue;
    if (!scheme && (hp[3] !== undefined || hp[4] !== undefined)) continue;
    return {
      scheme,
      credentials: at === -1 ? undefined : rest.slice(0, at),
      host: (hp[1] as string).replace(/^\[|\]$/g, ''),
      port: hp[2],
      db: hp[3],
      query: hp[4],
    };
  }
  return undefined;
}

function decodePart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a raw '%' in a password: taken as written
  }
}

function parseAddress(addr: string): RedisConnectionOptions {
  const split = splitAddress(addr);
  if (!split) {
    throw new ConfigError(
      'REDIS_ADDR',
      `${redactAddress(addr)} is neither host:port nor a redis:// or rediss:// URL (percent-encode unusual characters in the password, or pass it in REDIS_PASSWORD)`,
    );
  }
  if (!split.scheme && split.host === '')
    throw new ConfigError(
      'REDIS_ADDR',
      `${redactAddress(addr)} names no host; use host:port or a redis:// URL`,
    );
  const out: RedisConnectionOptions = { host: split.host || '127.0.0.1', port: 6379 };
  if (split.port !== undefined && split.port !== '') {
    const port = Number(split.port);
    if (!(port > 0 && port < 65536))
      throw new ConfigError('REDIS_ADDR', `port ${split.port} in ${redactAddress(addr)} is not a TCP port`);
    out.port = port;
  }
  if (split.credentials !== undefined) {
    // `user@host` names a user (URL semantics: REDIS_PASSWORD then gives its password).
    const colon = split.credentials.indexOf(':');
    const user = colon === -1 ? split.credentials : split.credentials.slice(0, colon);
    const password = colon === -1 ? '' : split.credentials.slice(colon + 1);
    if (user) out.username = decodePart(user);
    if (password) out.password = decodePart(password);
  }
  let db = split.db ?? '';
  if (split.query) {
    for (const pair of split.query.split('&')) {
      const eq = pair.indexOf('=');
      const name = decodePart(eq === -1 ? pair : pair.slice(0, eq));
      const value = decodePart(eq === -1 ? '' : pair.slice(eq + 1));
      if (name === 'password' && value) out.password = value;
      else if ((name === 'username' || name === 'user') && value) out.username = value;
      else if (name === 'db' && value && db === '') db = value;
    }
  }
  if (db !== '') {
    if (!/^\d+$/.test(db))
      throw new ConfigError(
        'REDIS_ADDR',
        `database ${JSON.stringify(db.slice(0, 20))} in ${redactAddress(addr)} is not a number`,
      );
    out.db = Number(db);
  }
  if (split.scheme === 'rediss://') out.tls = true;
  return out;
}

/**
 * An address with its secrets replaced by `***`, safe to log: the password of `user:password@`
 * (whatever characters it holds, `/ @ + % :` included, in URLs and in `host:port` forms), and the
 * values of `password=` / `pass=` / `token=` / `auth=` / `secret=` query parameters.
 */
export function redactAddress(addr: string): string {
  const split = splitAddress(addr);
  let head: string;
  let tail: string;
  if (split) {
    const m = /^(rediss?:\/\/)?(.*)$/is.exec(addr) as RegExpExecArray;
    const scheme = m[1] ?? '';
    const rest = m[2] as string;
    if (split.credentials === undefined) {
      head = scheme;
      tail = rest;
    } else {
      const colon = split.credentials.indexOf(':');
      head = `${scheme}${colon === -1 ? '***' : `${split.credentials.slice(0, colon)}:***`}@`;
      tail = rest.slice(split.credentials.length + 1);
    }
  } else {
    // Unparseable: hide everything up to the last '@' after the scheme.
    const m = /^([a-z][a-z0-9+.-]*:\/\/)?(.*)$/is.exec(addr) as RegExpExecArray;
    const rest = m[2] as string;
    const at = rest.lastIndexOf('@');
    head = `${m[1] ?? ''}${at === -1 ? '' : '***@'}`;
    tail = at === -1 ? rest : rest.slice(at + 1);
  }
  return head + tail.replace(SECRET_PARAMS, '$1***');
}

/**
 * Connection options from the seed's environment variables: `REDIS_ADDR` (`host:port` or a
 * `redis://`/`rediss://` URL, default `localhost:6379`), `REDIS_PASSWORD`, `REDIS_DB` (0-15),
 * `REDIS_MAX_RETRIES` (per-command retries, default 1) and `REDIS_POOL_SIZE`.
 * @throws {ConfigError} naming the invalid variable (never echoing a password).
 */
export function redisOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): RedisConnectionOptions {
  const addr = env.REDIS_ADDR?.trim() || 'localhost:6379';
  const out = parseAddress(addr);
  if (env.REDIS_PASSWORD) out.password = env.REDIS_PASSWORD;
  if (env.REDIS_DB?.trim()) out.db = envInt(env, 'REDIS_DB', 0, 0, 15);
  out.maxRetriesPerRequest = envInt(env, 'REDIS_MAX_RETRIES', 1, 0, 100);
  out.poolSize = envInt(env, 'REDIS_POOL_SIZE', 10, 1, 1000);
  return out;
}

/** The ioredis options (standalone) for {@link RedisConnectionOptions}, with the resilient settings. */
export function toIoredisOptions(options: RedisConnectionOptions): RedisOptions {
  const merged = { ...(options.url ? parseAddress(options.url) : {}), ...stripUndefined(options) };
  const cap = merged.maxReconnectDelayMs ?? 5000;
  const out: RedisOptions = {
    host: merged.host ?? '127.0.0.1',
    port: merged.port ?? 6379,
    db: merged.db ?? 0,
    connectionName: merged.connectionName ?? 'bgc-cache',
    // Fail fast instead of queueing while disconnected; a timed-out command must not be replayed later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: merged.maxRetriesPerRequest ?? 1,
    commandTimeout: merged.commandTimeoutMs ?? 100,
    connectTimeout: merged.connectTimeoutMs ?? 1500,
    retryStrategy: (times: number) => reconnectDelay(times, cap),
    keepAlive: 30_000,
  };
  if (merged.username !== undefined) out.username = merged.username;
  if (merged.password !== undefined) out.password = merged.password;
  if (merged.tls) out.tls = merged.tls === true ? {} : merged.tls;
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Builds an ioredis client (a `Cluster` when `cluster` is given) with the resilient settings of
 * the resilience guide: no offline queue, 1 retry per command, a command timeout, a short connect
 * timeout and a capped reconnect backoff that never gives up.
 */
export function createRedisClient(options: RedisConnectionOptions = {}): Redis | Cluster {
  const redisOptions = toIoredisOptions(options);
  if (options.cluster && options.cluster.length > 0) {
    const { host: _h, port: _p, db: _db, retryStrategy, ...nodeOptions } = redisOptions;
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      redisOptions: nodeOptions,
      clusterRetryStrategy: (times: number) => retryStrategy?.(times) ?? 1000,
      slotsRefreshTimeout: redisOptions.connectTimeout ?? 1500,
    };
    return new Cluster([...options.cluster], clusterOptions);
  }
  return new Redis(redisOptions);
}

/**
 * Closes a client politely (`QUIT`), falling back to a hard disconnect when that fails; does
 * nothing for a missing or already ended client. Never rejects.
 */
export async function quitClient(client: Redis | Cluster | undefined): Promise<void> {
  if (!client || client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/** Whether `client` is an ioredis `Cluster`. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * Resolves once `client` is connected and ready (at once if it already is).
 * @throws {TimeoutError} when it is not ready within `timeoutMs` (ms).
 */
export function waitForReady(client: Redis | Cluster, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(
        new TimeoutError(
          `Connecting to Redis (status ${client.status}; check the address, password and that Redis runs)`,
          timeoutMs,
        ),
      );
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** The part of a socket {@link batchWrites} uses. */
interface CorkableStream {
  writableCorked: number;
  cork(): void;
  uncork(): void;
}

const uncork = (stream: CorkableStream): void => stream.uncork();

/**
 * Holds the socket writes of a standalone `client` until the current tick ends (`cork` now,
 * `uncork` from `process.nextTick`), so that the commands issued in this tick — by this caller and
 * by every reply callback running in the same microtask drain — leave in one `writev` instead of
 * one `write` each. ioredis writes each command on its own: a system call per command, about 30%
 * of the CPU time of an L2 miss path at 64 concurrent operations (node-redis batches a tick's
 * commands this way by default). Nothing waits for a later event-loop turn, so a lone command is
 * not delayed. No-op for a Cluster client (its commands go to per-node sockets), a client that is
 * not ready (commands then wait in ioredis' queue), and a socket already corked in this tick.
 */
export function batchWrites(client: Redis | Cluster): void {
  const stream = (client as { stream?: CorkableStream }).stream;
  if (stream === undefined || stream.writableCorked !== 0 || client.status !== 'ready') return;
  stream.cork();
  process.nextTick(uncork, stream);
}
