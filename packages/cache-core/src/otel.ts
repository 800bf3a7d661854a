import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import { context, type Meter, type Span, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { CHANNEL_NAMES, type CacheTraceContext, type TracedOperation } from './instrumentation.js';

/**
 * `@bgc/cache-core/otel`: OpenTelemetry for every cache in the process, through the cache's
 * `diagnostics_channel` tracing channels (see {@link CHANNEL_NAMES}): nothing is paid until this
 * subscribes. One span per operation (`bgc.cache.get`, `bgc.cache.getOrLoad`, ...) with the
 * answering level and stale flag, and one per loader call (`bgc.cache.load`, a child of the
 * `bgc.cache.getOrLoad` span that started it; so are the spans of the operations an operation
 * makes, e.g. `pull`'s get and delete), and metrics: `bgc.cache.requests` (by operation and
 * result: hit/miss), `bgc.cache.duration` (seconds, by operation).
 */
export interface OtelOptions {
  /** Where spans go (e.g. `trace.getTracer('@bgc/cache-core')`). */
  tracer?: Tracer;
  /** Where metrics go (e.g. `metrics.getMeter('@bgc/cache-core')`). */
  meter?: Meter;
}

const SPAN = Symbol('bgc.otel.span');
const STARTED = Symbol('bgc.otel.started');

interface LevelResult {
  level?: unknown;
  stale?: unknown;
  value?: unknown;
}

/**
 * Subscribes spans and metrics to every cache operation; returns the function that unsubscribes.
 */
export function registerOtel(options: OtelOptions): () => void {
  const { tracer, meter } = options;
  const requests = meter?.createCounter('bgc.cache.requests', {
    description: 'Cache operations by operation and result (hit, miss, error, ok)',
  });
  const duration = meter?.createHistogram('bgc.cache.duration', {
    description: 'Duration of cache operations',
    unit: 's',
  });
  const undo: (() => void)[] = [];
  // The span of the operation in progress: the parent of the spans started within it.
  const parents = new AsyncLocalStorage<Span | undefined>();
  for (const [operation, name] of Object.entries(CHANNEL_NAMES) as [TracedOperation, string][]) {
    /** The span of a traced call, started on first use (by the store binding, else by `start`). */
    const spanOf = (ctx: CacheTraceContext): Span | undefined => {
      if (!tracer) return undefined;
      const existing = ctx[SPAN] as Span | undefined;
      if (existing !== undefined) return existing;
      const attributes: Record<string, string | number> = { 'bgc.cache.operation': operation };
      if (ctx.key !== undefined) attributes['bgc.cache.key'] = ctx.key;
      if (ctx.count !== undefined) attributes['bgc.cache.keys'] = ctx.count;
      if (ctx.tags !== undefined) attributes['bgc.cache.tags'] = ctx.tags.join(',');
      const parent = parents.getStore();
      const span = tracer.startSpan(
        `bgc.cache.${operation}`,
        { attributes },
        parent === undefined ? undefined : trace.setSpan(context.active(), parent),
      );
      ctx[SPAN] = span;
      return span;
    };
    const handlers = {
      start(message: unknown) {
        const ctx = message as CacheTraceContext;
        ctx[STARTED] = performance.now();
        spanOf(ctx);
      },
      end() {},
      asyncStart() {},
      asyncEnd(message: unknown) {
        const ctx = message as CacheTraceContext;
        const span = ctx[SPAN] as Span | undefined;
        const seconds = (performance.now() - (ctx[STARTED] as number)) / 1000;
        duration?.record(seconds, { 'bgc.cache.operation': operation });
        if (ctx.error !== undefined) {
          requests?.add(1, { 'bgc.cache.operation': operation, 'bgc.cache.result': 'error' });
          span?.end();
          return;
        }
        const r = ctx.result;
        if (operation === 'load') {
          // The loaded value, whatever its shape.
          requests?.add(1, { 'bgc.cache.operation': operation, 'bgc.cache.result': 'ok' });
        } else if (Array.isArray(r)) {
          let hits = 0;
          for (const one of r as LevelResult[]) if (one?.level !== 'external') hits++;
          span?.setAttributes({ 'bgc.cache.hits': hits, 'bgc.cache.misses': r.length - hits });
          if (hits > 0) requests?.add(hits, { 'bgc.cache.operation': operation, 'bgc.cache.result': 'hit' });
          if (r.length > hits)
            requests?.add(r.length - hits, { 'bgc.cache.operation': operation, 'bgc.cache.result': 'miss' });
        } else if (r !== null && typeof r === 'object' && 'level' in r) {
          const { level, stale } = r as LevelResult;
          span?.setAttributes({ 'bgc.cache.level': String(level), 'bgc.cache.stale': stale === true });
          const result = level === 'external' ? 'miss' : 'hit';
          requests?.add(1, { 'bgc.cache.operation': operation, 'bgc.cache.result': result });
        } else {
          requests?.add(1, { 'bgc.cache.operation': operation, 'bgc.cache.result': 'ok' });
        }
        span?.end();
      },
      error(message: unknown) {
        const ctx = message as CacheTraceContext;
        const span = ctx[SPAN] as Span | undefined;
        if (!span) return;
        const error = ctx.error;
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
      },
    };
    const channel = diagnostics.tracingChannel(name);
    channel.subscribe(handlers);
    if (tracer) channel.start.bindStore(parents, (message) => spanOf(message as CacheTraceContext));
    undo.push(() => {
      channel.unsubscribe(handlers);
      if (tracer) channel.start.unbindStore(parents);
    });
  }
  return () => {
    for (const u of undo.splice(0)) u();
  };
}
