import type { MultiLevelCache } from '@bgc/cache-core';
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { type CacheStack, createCacheStack } from './cache-stack.js';
import { BGC_CACHE } from './tokens.js';

const STACK = Symbol('BGC_CACHE_STACK');

/** Closes the cache (and its Redis connections) when the app shuts down. */
@Injectable()
class CacheStackCloser implements OnApplicationShutdown {
  constructor(@Inject(STACK) private readonly stack: CacheStack) {}
  onApplicationShutdown(): Promise<void> {
    return this.stack.close();
  }
}

/** Provides the MultiLevelCache under {@link BGC_CACHE}, built from REDIS_URL / CACHE_PREFIX. */
@Global()
@Module({
  providers: [
    {
      provide: STACK,
      useFactory: () =>
        createCacheStack({ redisUrl: process.env.REDIS_URL, prefix: process.env.CACHE_PREFIX }),
    },
    { provide: BGC_CACHE, inject: [STACK], useFactory: (stack: CacheStack): MultiLevelCache => stack.cache },
    CacheStackCloser,
  ],
  exports: [BGC_CACHE],
})
export class BgcCacheModule {}
