import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, MultiLevelCache, type MultiLevelCacheOptions } from '../src/index.js';
import type { CacheLogger } from '../src/logger.js';
import { FakeTier } from '../src/testing/index.js';

interface Line {
  level: 'debug' | 'info' | 'warn' | 'error';
  bindings: Record<string, unknown>;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A pino-shaped logger that records every line with its child bindings. */
function recordingLogger(lines: Line[], bindings: Record<string, unknown> = {}): CacheLogger {
  const at =
    (level: Line['level']) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, bindings, obj: obj as Record<string, unknown>, msg });
    };
  return {
    child: (more) => recordingLogger(lines, { ...bindings, ...more }),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

const caches: MultiLevelCache[] = [];
const make = (options: MultiLevelCacheOptions): MultiLevelCache => {
  const c = new MultiLevelCache(options);
  caches.push(c);
  return c;
};
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close();
});

describe('logger option', () => {
  it('refuses a logger that is not pino-compatible with E_CONFIG naming the option', () => {
    const bad = { info: () => {} } as unknown as CacheLogger;
    expect(() => new MultiLevelCache({ tiers: [new FakeTier()], logger: bad })).toThrow(ConfigError);
    try {
      new MultiLevelCache({ tiers: [new FakeTier()], logger: bad });
    } catch (error) {
      expect((error as ConfigError).code).toBe('E_CONFIG');
      expect((error as Error).message).toContain('logger');
    }
  });

  it('is silent by default and logs nothing on the happy path', async () => {
    const lines: Line[] = [];
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l2' })],
      logger: recordingLogger(lines),
    });
    await cache.set('k', 1);
    expect(await cache.get('k')).toMatchObject({ value: 1 });
    await cache.getOrLoad('m', () => 2);
    expect(lines).toEqual([]);
    const silent = make({ tiers: [new FakeTier()] });
    await silent.set('k', 1);
  });

  it('logs a tier failure at warn through the child { pkg }, with the tier, operation, key and error', async () => {
    const lines: Line[] = [];
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      circuitBreaker: false,
      logger: recordingLogger(lines),
    });
    l2.failWith = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    await cache.set('k', 1);
    const warn = lines.find((l) => l.level === 'warn');
    expect(warn?.bindings).toEqual({ pkg: '@bgc/cache-core' });
    expect(warn?.msg).toBe('cache tier operation failed');
    expect(warn?.obj).toMatchObject({
      level: 'l2',
      tier: l2.name,
      operation: 'set',
      key: 'k',
      errorType: 'connection_error',
    });
    expect(warn?.obj.err).toMatchObject({
      type: 'Error',
      message: 'connection refused',
      code: 'ECONNREFUSED',
    });
  });

  it('logs a loader failure at warn', async () => {
    const lines: Line[] = [];
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      logger: recordingLogger(lines),
    });
    await expect(
      cache.getOrLoad('k', () => {
        throw new Error('upstream 503');
      }),
    ).rejects.toThrow('upstream 503');
    await cache.flush();
    const warn = lines.find((l) => l.msg === 'cache loader failed');
    expect(warn).toMatchObject({
      level: 'warn',
      obj: { level: 'external', operation: 'load', key: 'k', errorType: 'loader_error' },
    });
  });

  it('logs the circuit opening at error, no line per refused call, closing and recovery at info', async () => {
    const lines: Line[] = [];
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      circuitBreaker: { failureThreshold: 1, cooldownMs: 20 },
      recoveryIntervalMs: 20,
      logger: recordingLogger(lines),
    });
    l2.failWith = new Error('down');
    await cache.set('a', 1);
    await cache.set('b', 2);
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    await recovered;
    const byMsg = (m: string) => lines.filter((l) => l.msg === m);
    expect(byMsg('cache tier circuit opened: the tier is skipped')).toEqual([
      expect.objectContaining({ level: 'error', obj: { level: 'l2', tier: l2.name, state: 'open' } }),
    ]);
    // 'b' was refused by the open circuit: counted in metrics, not logged line by line.
    expect(lines.filter((l) => l.obj.key === 'b')).toEqual([]);
    expect(byMsg('cache tier circuit closed')).toEqual([
      expect.objectContaining({ level: 'info', obj: { level: 'l2', tier: l2.name, state: 'closed' } }),
    ]);
    // Both writes (the failed one and the one the open circuit skipped) are written again.
    expect(
      byMsg('cache tier recovered: writes that failed meanwhile written again or their keys invalidated'),
    ).toEqual([
      expect.objectContaining({ level: 'info', obj: { level: 'l2', tier: l2.name, keys: 2, rewritten: 2 } }),
    ]);
    expect(lines.every((l) => l.bindings.pkg === '@bgc/cache-core')).toBe(true);
  });

  it('logs a failed invalidation publish at warn', async () => {
    const lines: Line[] = [];
    const bus = {
      publish: () => Promise.reject(new Error('bus down')),
      subscribe: () => {},
      close: () => Promise.resolve(),
    };
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      bus,
      logger: recordingLogger(lines),
    });
    await cache.set('k', 1);
    expect(lines.find((l) => l.level === 'warn')?.obj).toMatchObject({
      level: 'l2',
      operation: 'delete',
      err: { message: 'bus down' },
    });
  });
});
