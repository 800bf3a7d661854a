import diagnostics from 'node:diagnostics_channel';

/**
 * The cache's `node:diagnostics_channel` tracing channels, one per operation: `bgc:cache:get`,
 * `bgc:cache:getOrLoad`, `bgc:cache:getMany`, `bgc:cache:set`, `bgc:cache:delete`,
 * `bgc:cache:deleteByTag`, `bgc:cache:clear`, and `bgc:cache:load` around each loader call (inside
 * the `getOrLoad` that started it; its `result` is the loaded value). The cache publishes only while a channel has
 * subscribers (one property read per call otherwise). Each message is a {@link CacheTraceContext}:
 * `start`, `end`, `asyncStart`/`asyncEnd` (with `result`) and `error` (with `error`), as
 * `TracingChannel.tracePromise` publishes them. `registerOtel` (`@bgc/cache-core/otel`) is one
 * subscriber; any APM can subscribe to the same names.
 */
export const CHANNEL_NAMES = {
  get: 'bgc:cache:get',
  getOrLoad: 'bgc:cache:getOrLoad',
  getMany: 'bgc:cache:getMany',
  set: 'bgc:cache:set',
  delete: 'bgc:cache:delete',
  deleteByTag: 'bgc:cache:deleteByTag',
  clear: 'bgc:cache:clear',
  load: 'bgc:cache:load',
} as const;

/** An operation traced through {@link CHANNEL_NAMES}. */
export type TracedOperation = keyof typeof CHANNEL_NAMES;

/** The message of every event of one traced call. */
export interface CacheTraceContext {
  /** The operation. */
  operation: TracedOperation;
  /** The key (get, getOrLoad, set, delete, load). */
  key?: string;
  /** How many keys (getMany). */
  count?: number;
  /** The tags (deleteByTag). */
  tags?: readonly string[];
  /** The call's result, from `asyncStart` on (a `CacheResult`, a `CacheResult[]`...). */
  result?: unknown;
  /** The call's error, on `error`. */
  error?: unknown;
  /** Free for subscribers (e.g. the span of this call). */
  [slot: symbol]: unknown;
}

type Channel = diagnostics.TracingChannel<unknown, CacheTraceContext>;

function tracing(name: string): Channel {
  return diagnostics.tracingChannel(name) as unknown as Channel;
}

/** The tracing channels, by operation. */
export const channels: Readonly<Record<TracedOperation, Channel>> = {
  get: tracing(CHANNEL_NAMES.get),
  getOrLoad: tracing(CHANNEL_NAMES.getOrLoad),
  getMany: tracing(CHANNEL_NAMES.getMany),
  set: tracing(CHANNEL_NAMES.set),
  delete: tracing(CHANNEL_NAMES.delete),
  deleteByTag: tracing(CHANNEL_NAMES.deleteByTag),
  clear: tracing(CHANNEL_NAMES.clear),
  load: tracing(CHANNEL_NAMES.load),
};

/** Runs `fn` traced on `channel` (the caller checked `channel.hasSubscribers`). */
export function traced<R>(channel: Channel, context: CacheTraceContext, fn: () => Promise<R>): Promise<R> {
  return channel.tracePromise(fn, context);
}
