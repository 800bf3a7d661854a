import { describe, expect, it, vi } from 'vitest';
import { nextVersion, observeVersion, VERSIONS_PER_MS, versionTime } from '../src/version.js';

const KEY = Symbol.for('@bgc/cache-core/version-clock');

describe('version clock', () => {
  it('is strictly increasing within one millisecond and maps back to its millisecond', () => {
    const now = Date.now() + 60_000;
    const a = nextVersion(now);
    const b = nextVersion(now);
    expect(b).toBe(a + 1);
    expect(versionTime(b)).toBe(now);
    expect(a).toBeGreaterThanOrEqual(now * VERSIONS_PER_MS);
  });

  it('keeps its state on the globalThis slot Symbol.for("@bgc/cache-core/version-clock")', () => {
    const v = nextVersion();
    const slot = (globalThis as Record<symbol, { last: number }>)[KEY];
    expect(slot).toBeDefined();
    expect(slot?.last).toBe(v);
  });

  it('a second copy of the module (as the testing bundle carries) shares the clock', async () => {
    const now = Date.now() + 120_000;
    const first = nextVersion(now);
    vi.resetModules();
    // A query string makes Vite load a second, independent instance of the module.
    const copyUrl = new URL('../src/version.ts?copy', import.meta.url).href;
    const copy = (await import(/* @vite-ignore */ copyUrl)) as typeof import('../src/version.js');
    expect(copy.nextVersion).not.toBe(nextVersion);
    // Same millisecond, other copy: still ordered after the first copy's version.
    const second = copy.nextVersion(now);
    expect(second).toBe(first + 1);
    // And the first copy sees what the second one observed.
    copy.observeVersion(second + 1_000);
    expect(nextVersion(now)).toBe(second + 1_001);
    observeVersion(second + 5_000);
    expect(copy.nextVersion(now)).toBe(second + 5_001);
  });
});
