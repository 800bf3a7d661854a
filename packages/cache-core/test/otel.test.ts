import diagnostics from 'node:diagnostics_channel';
import { type Context, type Meter, type Tracer, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { MultiLevelCache } from '../src/index.js';
import { CHANNEL_NAMES, channels } from '../src/instrumentation.js';
import { registerOtel } from '../src/otel.js';
import { FakeTier } from '../src/testing/index.js';

// @opentelemetry/sdk-trace-base is not installed in this workspace: a recording tracer and meter
// implementing the parts of the API interfaces the subscriber calls.
interface RecordedSpan {
  name: string;
  attributes: Record<string, unknown>;
  exceptions: unknown[];
  status?: { code: number; message?: string };
  ended: boolean;
  /** The name of the parent span given at start, if any. */
  parent?: string;
}

function recordingTracer(spans: RecordedSpan[]): Tracer {
  const names = new WeakMap<object, string>();
  return {
    startSpan(name: string, options?: { attributes?: Record<string, unknown> }, parentContext?: Context) {
      const parentSpan = parentContext === undefined ? undefined : trace.getSpan(parentContext);
      const span: RecordedSpan = {
        name,
        attributes: { ...options?.attributes },
        exceptions: [],
        ended: false,
      };
      if (parentSpan !== undefined) span.parent = names.get(parentSpan);
      spans.push(span);
      const api = {
        setAttributes(a: Record<string, unknown>) {
          Object.assign(span.attributes, a);
          return api;
        },
        setAttribute(k: string, v: unknown) {
          span.attributes[k] = v;
          return api;
        },
        recordException(e: unknown) {
          span.exceptions.push(e);
        },
        setStatus(s: { code: number; message?: string }) {
          span.status = s;
          return api;
        },
        end() {
          span.ended = true;
        },
      };
      names.set(api, name);
      return api;
    },
  } as unknown as Tracer;
}

interface Point {
  instrument: string;
  value: number;
  attributes: Record<string, unknown>;
}

function recordingMeter(points: Point[]): Meter {
  const instrument = (name: string) => ({
    add: (value: number, attributes: Record<string, unknown> = {}) =>
      points.push({ instrument: name, value, attributes }),
    record: (value: number, attributes: Record<string, unknown> = {}) =>
      points.push({ instrument: name, value, attributes }),
  });
  return { createCounter: instrument, createHistogram: instrument } as unknown as Meter;
}

let unregister: (() => void) | undefined;
const caches: MultiLevelCache[] = [];
afterEach(async () => {
  unregister?.();
  unregister = undefined;
  for (const c of caches.splice(0)) await c.close();
});

function twoTiers(): MultiLevelCache {
  const c = new MultiLevelCache({
    tiers: [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l2' })],
  });
  caches.push(c);
  return c;
}

describe('diagnostics_channel tracing and the OpenTelemetry subscriber', () => {
  it('publishes nothing without a subscriber, and stops once unregistered', async () => {
    for (const ch of Object.values(channels)) expect(ch.hasSubscribers).toBe(false);
    unregister = registerOtel({ tracer: recordingTracer([]) });
    for (const ch of Object.values(channels)) expect(ch.hasSubscribers).toBe(true);
    unregister();
    unregister = undefined;
    for (const ch of Object.values(channels)) expect(ch.hasSubscribers).toBe(false);
  });

  it('one span per operation with the answering level and stale flag; hit/miss counters and durations', async () => {
    const spans: RecordedSpan[] = [];
    const points: Point[] = [];
    unregister = registerOtel({ tracer: recordingTracer(spans), meter: recordingMeter(points) });
    const cache = twoTiers();
    await cache.set('k', 1);
    await cache.get('k');
    await cache.get('absent');
    await cache.getOrLoad('loaded', () => 2);
    await cache.getMany(['k', 'absent']);
    await cache.delete('k');
    await cache.deleteByTag(['t1']);
    await cache.clear();
    expect(spans.map((s) => s.name)).toEqual([
      'bgc.cache.set',
      'bgc.cache.get',
      'bgc.cache.get',
      'bgc.cache.getOrLoad',
      'bgc.cache.load',
      'bgc.cache.getMany',
      'bgc.cache.delete',
      'bgc.cache.deleteByTag',
      'bgc.cache.clear',
    ]);
    expect(spans.every((s) => s.ended)).toBe(true);
    expect(spans[1]?.attributes).toMatchObject({
      'bgc.cache.key': 'k',
      'bgc.cache.level': 'l1',
      'bgc.cache.stale': false,
    });
    expect(spans[2]?.attributes).toMatchObject({ 'bgc.cache.level': 'external' });
    expect(spans[3]?.attributes).toMatchObject({ 'bgc.cache.key': 'loaded', 'bgc.cache.level': 'external' });
    // The loader's span, a child of the getOrLoad that called it.
    expect(spans[4]).toMatchObject({
      parent: 'bgc.cache.getOrLoad',
      attributes: { 'bgc.cache.key': 'loaded' },
    });
    expect(spans.filter((s) => s.parent !== undefined)).toHaveLength(1);
    expect(spans[5]?.attributes).toMatchObject({
      'bgc.cache.keys': 2,
      'bgc.cache.hits': 1,
      'bgc.cache.misses': 1,
    });
    expect(spans[7]?.attributes).toMatchObject({ 'bgc.cache.tags': 't1' });
    const count = (op: string, result: string) =>
      points
        .filter(
          (p) =>
            p.instrument === 'bgc.cache.requests' &&
            p.attributes['bgc.cache.operation'] === op &&
            p.attributes['bgc.cache.result'] === result,
        )
        .reduce((a, p) => a + p.value, 0);
    expect(count('get', 'hit')).toBe(1);
    expect(count('get', 'miss')).toBe(1);
    expect(count('getMany', 'hit')).toBe(1);
    expect(count('getMany', 'miss')).toBe(1);
    expect(count('set', 'ok')).toBe(1);
    expect(count('load', 'ok')).toBe(1);
    const durations = points.filter((p) => p.instrument === 'bgc.cache.duration');
    expect(durations).toHaveLength(9);
    expect(durations.every((p) => p.value >= 0)).toBe(true);
  });

  it('a failed operation ends its span with the exception and an error status', async () => {
    const spans: RecordedSpan[] = [];
    const points: Point[] = [];
    unregister = registerOtel({ tracer: recordingTracer(spans), meter: recordingMeter(points) });
    const cache = twoTiers();
    await expect(
      cache.getOrLoad('k', () => {
        throw new Error('upstream down');
      }),
    ).rejects.toThrow('upstream down');
    await expect(cache.set('', 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' });
    expect(spans).toHaveLength(3);
    expect(spans[0]).toMatchObject({
      name: 'bgc.cache.getOrLoad',
      ended: true,
      status: { code: 2, message: 'upstream down' },
    });
    expect((spans[0]?.exceptions[0] as Error | undefined)?.message).toBe('upstream down');
    expect(spans[1]).toMatchObject({
      name: 'bgc.cache.load',
      parent: 'bgc.cache.getOrLoad',
      ended: true,
      status: { code: 2, message: 'upstream down' },
    });
    expect(spans[2]).toMatchObject({ name: 'bgc.cache.set', ended: true, status: { code: 2 } });
    expect(points.filter((p) => p.attributes['bgc.cache.result'] === 'error')).toHaveLength(3);
  });

  it('a loader span is the child of its getOrLoad span; other spans keep the caller context (pull: get and delete)', async () => {
    const spans: RecordedSpan[] = [];
    unregister = registerOtel({ tracer: recordingTracer(spans) });
    const cache = twoTiers();
    await cache.set('k', 1);
    // pull is not traced itself: its get and delete are, under the caller's context (no parent).
    expect(await cache.pull('k')).toBe(1);
    expect(spans.map((s) => [s.name, s.parent])).toEqual([
      ['bgc.cache.set', undefined],
      ['bgc.cache.get', undefined],
      ['bgc.cache.delete', undefined],
    ]);
    // A loader's value shaped like a result is recorded as a load, not as a hit.
    await cache.getOrLoad('shaped', () => ({ level: 'l2', stale: true }));
    expect(spans.at(-1)).toMatchObject({ name: 'bgc.cache.load', parent: 'bgc.cache.getOrLoad' });
    expect(spans.at(-1)?.attributes['bgc.cache.level']).toBeUndefined();
  });

  it('any subscriber sees the operation context on the channel names', async () => {
    const seen: unknown[] = [];
    const handlers = {
      start: (m: unknown) => seen.push(m),
      end: () => {},
      asyncStart: () => {},
      asyncEnd: () => {},
      error: () => {},
    };
    const ch = diagnostics.tracingChannel(CHANNEL_NAMES.get);
    ch.subscribe(handlers);
    try {
      const cache = twoTiers();
      await cache.get('x');
    } finally {
      ch.unsubscribe(handlers);
    }
    expect(seen).toEqual([expect.objectContaining({ operation: 'get', key: 'x' })]);
  });
});
