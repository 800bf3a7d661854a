import { describe, expect, it } from 'vitest';
import { InvalidationQueue, VersionGuard } from '../src/coherence.js';
import { VERSIONS_PER_MS } from '../src/internal.js';

const at = (ms: number) => ms * VERSIONS_PER_MS;

describe('VersionGuard', () => {
  it('refuses entries older than the key version or the last clear, keeps the highest version', () => {
    const g = new VersionGuard(60_000);
    g.record('k', at(2000));
    g.record('k', at(1000));
    expect(g.superseded('k', { value: 1, freshUntil: 0, staleUntil: 0, version: at(1500) })).toBe(true);
    expect(g.superseded('k', { value: 1, freshUntil: 0, staleUntil: 0, version: at(2000) })).toBe(false);
    expect(g.superseded('k', { value: 1, freshUntil: 0, staleUntil: 0 })).toBe(true);
    expect(g.superseded('other', { value: 1, freshUntil: 0, staleUntil: 0 })).toBe(false);
    g.clear(at(3000));
    expect(g.size).toBe(0);
    expect(g.superseded('x', { value: 1, freshUntil: 0, staleUntil: 0, version: at(2500) })).toBe(true);
    g.record('y', at(4000));
    g.clear(at(3500)); // an older clear received later keeps the newer version
    expect(g.size).toBe(1);
  });

  it('prunes versions older than keepMs, except those a load in flight may still race with', () => {
    const g = new VersionGuard(1000);
    const now = 1_000_000;
    g.record('old', at(now - 5000));
    g.record('recent', at(now - 500));
    g.loadStarted(at(now - 6000));
    g.prune(now);
    expect(g.size).toBe(2);
    g.loadEnded(at(now - 6000));
    g.prune(now);
    expect(g.size).toBe(1);
    expect(g.superseded('recent', { value: 1, freshUntil: 0, staleUntil: 0, version: at(now - 600) })).toBe(
      true,
    );
  });

  it('stays bounded under many keys', () => {
    const g = new VersionGuard(0);
    for (let i = 0; i < 10_000; i++) g.record(`k${i}`, at(Date.now() - 10_000));
    expect(g.size).toBeLessThanOrEqual(1025);
  });
});

describe('InvalidationQueue', () => {
  it('dedupes keys, keeps the highest version, bounds each kind, and a clear replaces key messages', () => {
    const q = new InvalidationQueue(2);
    expect(q.empty).toBe(true);
    q.add({ type: 'resync' });
    expect(q.empty).toBe(true);
    q.add({ type: 'delete', keys: ['a', 'b'], version: 5 });
    q.add({ type: 'delete', keys: ['a'], version: 7 });
    q.add({ type: 'expire', keys: ['e'] });
    expect(q.take()).toEqual([
      { type: 'delete', keys: ['b', 'a'], version: 7 },
      { type: 'expire', keys: ['e'] },
    ]);
    expect(q.empty).toBe(true);
    q.add({ type: 'delete', keys: ['a', 'b', 'c'], version: 1 });
    expect(q.take()).toEqual([{ type: 'delete', keys: ['b', 'c'], version: 1 }]);
    q.add({ type: 'delete', keys: ['a'], version: 1 });
    q.add({ type: 'clear', version: 9 });
    q.add({ type: 'clear', version: 8 });
    expect(q.take()).toEqual([{ type: 'clear', version: 9 }]);
    q.add({ type: 'clear' });
    expect(q.take()).toEqual([{ type: 'clear' }]);
  });
});
