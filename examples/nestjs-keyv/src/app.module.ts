import type { MultiLevelCache } from '@bgc/cache-core';
import { createKeyv } from '@bgc/cache-keyv';
import { CacheModule } from '@nestjs/cache-manager';
import { Module } from '@nestjs/common';
import { BgcCacheModule } from './bgc-cache.module.js';
import { RatesController } from './rates.controller.js';
import { RatesUpstream } from './rates.service.js';
import { BGC_CACHE, UPSTREAM } from './tokens.js';

@Module({
  imports: [
    BgcCacheModule,
    CacheModule.registerAsync({
      isGlobal: true,
      inject: [BGC_CACHE],
      useFactory: (cache: MultiLevelCache) => ({
        stores: [createKeyv(cache, { namespace: 'rates' })],
        ttl: 60_000,
      }),
    }),
  ],
  controllers: [RatesController],
  providers: [{ provide: UPSTREAM, useClass: RatesUpstream }],
})
export class AppModule {}
