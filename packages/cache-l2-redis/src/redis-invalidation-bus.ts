import { randomUUID } from 'node:crypto';
import {
  BgcCacheError,
  type InvalidationBus,
  type InvalidationMessage,
  type MetricsAdapter,
  NOOP_METRICS,
} from '@bgc/cache-core';
import { parseJsonSafely } from '@bgc/cache-core/internal';
import type { Cluster, Redis } from 'ioredis';
import {
  createRedisClient,
  isCluster,
  quitClient,
  type RedisConnectionOptions,
  waitForReady,
} from './redis-client.js';
import { toTierError } from './redis-errors.js';
import { DEFAULT_PREFIX } from './redis-tier.js';

/** Options of {@link RedisInvalidationBus}. */
export interface RedisInvalidationBusOptions extends RedisConnectionOptions {
  /**
   * An existing ioredis client to publish with (never closed by the bus). The subscriber is always
   * a dedicated connection, duplicated from it. When absent, both are built from the connection options.
   */
  client?: Redis | Cluster;
  /** Key prefix of the cache; the channel is derived from it, so environments sharing a Redis stay apart. @default 'bgc:cache:' */
  prefix?: string;
  /** Channel name. @default `${prefix}invalidate` */
  channel?: string;
  /** This instance's id; messages carrying it are ignored on receipt. @default a random UUID */
  instanceId?: string;
  /** Use sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7) under Cluster. @default true under Cluster */
  sharded?: boolean;
  /** Where undecodable messages are reported (`error('l2', 'delete', 'serialization_error')`). @default NOOP_METRICS */
  metrics?: MetricsAdapter;
}

interface WireMessage {
  i?: unknown;
  t?: unknown;
  k?: unknown;
  n?: unknown;
}

/**
 * Cross-instance L1 invalidation over Redis pub/sub. Messages carry keys and versions only
 * (`{"i":<instance>,"t":"delete"|"expire","k":[...],"n":<version>}` or `{"i":...,"t":"clear","n":...}`);
 * each instance ignores its own. Pub/sub is at-most-once, so when the subscriber loses its
 * connection, and again once it is back (standalone, and each sharded subscriber under Cluster),
 * the handler receives `{ type: 'resync' }`: messages sent meanwhile may be lost, so the core turns
 * its local entries stale (kept as fail-safe fallbacks, no longer served as fresh).
 */
export class RedisInvalidationBus implements InvalidationBus {
  /** The id written into this instance's messages. */
  readonly instanceId: string;
  /** The pub/sub channel. */
  readonly channel: string;
  /** Whether sharded pub/sub is used. */
  readonly sharded: boolean;
  private readonly publisher: Redis | Cluster;
  private readonly ownsPublisher: boolean;
  private readonly metrics: MetricsAdapter;
  private subscriber: Redis | Cluster | undefined;
  private subscribed: Promise<void> | undefined;
  private handler: ((message: InvalidationMessage) => void) | undefined;
  private readyCount = 0;
  private lost = false;
  private closed = false;

  constructor(options: RedisInvalidationBusOptions = {}) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.channel = options.channel ?? `${options.prefix ?? DEFAULT_PREFIX}invalidate`;
    this.metrics = options.metrics ?? NOOP_METRICS;
    this.ownsPublisher = options.client === undefined;
    this.publisher = options.client ?? createRedisClient(options);
    // A client we created reports failures through rejected commands; keep ioredis from logging each reconnect error.
    if (this.ownsPublisher) this.publisher.on('error', () => {});
    this.sharded = isCluster(this.publisher) && options.sharded !== false;
  }

  /**
   * Publishes a message to the other instances.
   * @throws {TierError} when Redis cannot be reached (the message is lost; others' L1 expire by TTL).
   */
  async publish(message: InvalidationMessage): Promise<void> {
    if (message.type === 'resync') return; // local only, never published
    const wire: WireMessage = { i: this.instanceId, t: message.type };
    if (message.type !== 'clear') wire.k = message.keys;
    if (message.version !== undefined) wire.n = message.version;
    const text = JSON.stringify(wire);
    try {
      if (this.sharded) await (this.publisher as Cluster).spublish(this.channel, text);
      else await this.publisher.publish(this.channel, text);
    } catch (error) {
      throw toTierError('delete', `invalidation publish on ${this.channel}`, error, undefined);
    }
  }

  /**
   * Registers the handler (replacing any previous one) and starts the dedicated subscriber.
   * Await {@link RedisInvalidationBus.ready} to know when messages start arriving.
   */
  subscribe(handler: (message: InvalidationMessage) => void): void {
    this.handler = handler;
    if (!this.subscribed) {
      this.subscribed = this.start();
      this.subscribed.catch(() => {
        // Reported through ready(); the subscriber keeps reconnecting by itself.
      });
    }
  }

  /**
   * Connects: resolves once the publisher is ready and, when {@link RedisInvalidationBus.subscribe}
   * was called, the subscriber is listening.
   * @throws {TimeoutError} when not connected within `timeoutMs` (ms, default 5000).
   */
  async connect(timeoutMs = 5000): Promise<void> {
    await waitForReady(this.publisher, timeoutMs);
    if (this.subscribed) await this.ready(timeoutMs);
  }

  /**
   * Resolves once the subscriber is listening.
   * @throws {TimeoutError} when not subscribed within `timeoutMs` (ms, default 5000).
   */
  async ready(timeoutMs = 5000): Promise<void> {
    if (!this.subscribed)
      throw new BgcCacheError(
        'E_BUS_NOT_SUBSCRIBED',
        'RedisInvalidationBus.ready() was called before subscribe(); call subscribe(handler) first',
      );
    await this.subscribed;
    if (this.subscriber) await waitForReady(this.subscriber, timeoutMs);
  }

  /** Stops listening, closes the subscriber, and the publisher if the bus created it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await quitClient(this.subscriber);
    if (this.ownsPublisher) await quitClient(this.publisher);
  }

  private async start(): Promise<void> {
    const sub = isCluster(this.publisher)
      ? (this.publisher as Cluster).duplicate(undefined, {
          shardedSubscribers: this.sharded,
          enableOfflineQueue: true,
        })
      : (this.publisher as Redis).duplicate({
          enableOfflineQueue: true,
          commandTimeout: undefined,
          connectionName: 'bgc-cache-bus',
        });
    this.subscriber = sub;
    sub.on('error', () => {
      // Reconnects by itself; a lost connection and its return raise a local resync (below).
    });
    const onMessage = (channel: string, text: string) => {
      if (channel === this.channel) this.receive(text);
    };
    sub.on(this.sharded ? 'smessage' : 'message', onMessage);
    // Lost: messages may be missed from now on. Back: they may have been missed meanwhile.
    const lost = () => {
      if (this.closed || this.lost || this.readyCount === 0) return;
      this.lost = true;
      this.handler?.({ type: 'resync' });
    };
    const back = () => {
      if (this.closed || !this.lost) return;
      this.lost = false;
      this.handler?.({ type: 'resync' });
    };
    sub.on('ready', () => {
      this.readyCount++;
      if (this.readyCount > 1) {
        this.lost = true;
        back();
      }
    });
    sub.on('close', lost);
    if (this.sharded) {
      // ioredis' sharded subscribers: one connection per shard, replaced by the subscriber group.
      sub.on('-node', lost);
      sub.on('-subscriber', lost);
      sub.on('+subscriber', back);
      sub.on('subscribersReady', back);
    }
    if (this.sharded) await (sub as Cluster).ssubscribe(this.channel);
    else await sub.subscribe(this.channel);
  }

  private receive(text: string): void {
    let wire: WireMessage;
    try {
      wire = parseJsonSafely(text) as WireMessage;
    } catch {
      this.metrics.error('l2', 'delete', 'serialization_error');
      return;
    }
    if (typeof wire !== 'object' || wire === null || wire.i === this.instanceId) return;
    const n = wire.n;
    if (n !== undefined && !(typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) {
      this.metrics.error('l2', 'delete', 'serialization_error');
      return;
    }
    const version = n as number | undefined;
    if (wire.t === 'clear') {
      this.handler?.(version === undefined ? { type: 'clear' } : { type: 'clear', version });
    } else if (
      (wire.t === 'delete' || wire.t === 'expire') &&
      Array.isArray(wire.k) &&
      wire.k.every((k) => typeof k === 'string')
    ) {
      const keys = wire.k as string[];
      this.handler?.(version === undefined ? { type: wire.t, keys } : { type: wire.t, keys, version });
    } else {
      this.metrics.error('l2', 'delete', 'serialization_error');
    }
  }
}
