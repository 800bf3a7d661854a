import { CACHE_MANAGER, type Cache } from '@nestjs/cache-manager';
import { Controller, Delete, Get, HttpCode, Inject, Param } from '@nestjs/common';
import type { RatesUpstream } from './rates.service.js';
import { UPSTREAM } from './tokens.js';

/** Rates served through @nestjs/cache-manager (cache-manager v7 on the bgc cache). */
@Controller('rates')
export class RatesController {
  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(UPSTREAM) private readonly upstream: RatesUpstream,
  ) {}

  /** The rate of `currency`: cached for a minute, the upstream called once per miss. */
  @Get(':currency')
  rate(@Param('currency') currency: string) {
    return this.cache.wrap(`rate:${currency}`, () => this.upstream.fetchRate(currency), 60_000);
  }

  /** Drops the cached rate on every instance (the next GET calls the upstream). */
  @Delete(':currency')
  @HttpCode(204)
  async forget(@Param('currency') currency: string): Promise<void> {
    await this.cache.del(`rate:${currency}`);
  }
}
