import { randomUUID } from 'node:crypto';
import {
  BgcCacheError,
  type InvalidationBus,
  type InvalidationMessage,
  type MetricsAdapter,
  NOOP_METRICS,
} from '@bgc/cache-core';
import type { Cluster, Redis } from 'ioredis';
import sjson from 'secure-json-parse';
import { createRedisClient, isCluster, type RedisConnectionOptions, waitForReady } from './redis-client.js';
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
}

/**
 * Cross-instance L1 invalidation over Redis pub/sub. Messages carry keys only
 * (`{"i":<instance>,"t":"delete","k":[...]}` or `{"i":...,"t":"clear"}`); each instance ignores its
 * own. Pub/sub is at-most-once, so after the subscriber reconnects the handler receives
 * `{ type: 'clear' }`: messages sent meanwhile are lost and L1 must be dropped.
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
    const wire =
      message.type === 'clear'
        ? JSON.stringify({ i: this.instanceId, t: 'clear' })
        : JSON.stringify({ i: this.instanceId, t: 'delete', k: message.keys });
    try {
      if (this.sharded) await (this.publisher as Cluster).spublish(this.channel, wire);
      else await this.publisher.publish(this.channel, wire);
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
    const quit = async (c: Redis | Cluster | undefined) => {
      if (!c || c.status === 'end') return;
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    };
    await quit(this.subscriber);
    if (this.ownsPublisher) await quit(this.publisher);
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
      // Reconnects by itself; a reconnect triggers a local clear (see onReady).
    });
    const onMessage = (channel: string, text: string) => {
      if (channel === this.channel) this.receive(text);
    };
    sub.on(this.sharded ? 'smessage' : 'message', onMessage);
    sub.on('ready', () => {
      this.readyCount++;
      if (this.readyCount > 1 && !this.closed) this.handler?.({ type: 'clear' });
    });
    if (this.sharded) await (sub as Cluster).ssubscribe(this.channel);
    else await sub.subscribe(this.channel);
  }

  private receive(text: string): void {
    let wire: WireMessage;
    try {
      wire = sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' }) as WireMessage;
    } catch {
      this.metrics.error('l2', 'delete', 'serialization_error');
      return;
    }
    if (typeof wire !== 'object' || wire === null || wire.i === this.instanceId) return;
    if (wire.t === 'clear') {
      this.handler?.({ type: 'clear' });
    } else if (wire.t === 'delete' && Array.isArray(wire.k) && wire.k.every((k) => typeof k === 'string')) {
      this.handler?.({ type: 'delete', keys: wire.k as string[] });
    } else {
      this.metrics.error('l2', 'delete', 'serialization_error');
    }
  }
}
