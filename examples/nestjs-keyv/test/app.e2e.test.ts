// End to end: two instances of the NestJS app (one Redis shared), HTTP requests through
// @nestjs/cache-manager → cache-manager v7 → Keyv → @bgc/cache-keyv → MultiLevelCache.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppModule } from '../src/app.module.js';
import type { RatesUpstream } from '../src/rates.service.js';
import { UPSTREAM } from '../src/tokens.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bgc-test:nestjs-keyv:${process.pid}:${randomUUID().slice(0, 8)}:`;

interface Instance {
  app: INestApplication;
  url: string;
  upstream: RatesUpstream;
}

async function start(): Promise<Instance> {
  process.env.REDIS_URL = REDIS_URL;
  process.env.CACHE_PREFIX = prefix;
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), upstream: app.get<RatesUpstream>(UPSTREAM) };
}

describe('nestjs-keyv example (two instances sharing Redis)', () => {
  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    await a?.app.close();
    await b?.app.close();
    const admin = new Redis(REDIS_URL);
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  it('caches a route, shares it across instances, and a DELETE on one is seen by the other', async () => {
    const first = await (await fetch(`${a.url}/rates/USD`)).json();
    expect(first).toMatchObject({ currency: 'USD' });
    expect(await (await fetch(`${a.url}/rates/USD`)).json()).toEqual(first);
    expect(a.upstream.calls).toBe(1);

    // The other instance finds it in Redis: its upstream is never called.
    expect(await (await fetch(`${b.url}/rates/USD`)).json()).toEqual(first);
    expect(b.upstream.calls).toBe(0);

    const del = await fetch(`${a.url}/rates/USD`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    // The delete reached b's memory tier through the bus: its next read calls its upstream.
    let fresh: unknown = first;
    for (let i = 0; i < 200 && JSON.stringify(fresh) === JSON.stringify(first); i++) {
      fresh = await (await fetch(`${b.url}/rates/USD`)).json();
    }
    expect(fresh).not.toEqual(first);
    expect(b.upstream.calls).toBe(1);
  });
});
