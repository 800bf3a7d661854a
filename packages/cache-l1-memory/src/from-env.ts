import { loadCacheConfigFromEnv } from '@bgc/cache-core';
import { MemoryTier, type MemoryTierOptions } from './memory-tier.js';

/**
 * Creates a {@link MemoryTier} configured from the seed's environment variables:
 * `CACHE_L1_MAX_SIZE_MB` (capacity, default 100) and `CACHE_L1_DEFAULT_TTL` (the tier's
 * `maxTtlMs`, Go duration syntax, default `5m`). `overrides` win over the environment.
 * @throws {ConfigError} naming the first invalid variable.
 */
export function memoryTierFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: MemoryTierOptions = {},
): MemoryTier {
  const { l1 } = loadCacheConfigFromEnv(env);
  return new MemoryTier({ maxSizeBytes: l1.maxSizeBytes, maxTtlMs: l1.defaultTtlMs, ...overrides });
}
