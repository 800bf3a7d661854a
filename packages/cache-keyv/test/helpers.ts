import { randomUUID } from 'node:crypto';

/** Address of the shared Redis the tests use (unique prefixes keep runs apart). */
export const REDIS_HOST = process.env.REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;

/** A prefix no other test run uses. */
export const uniquePrefix = (what: string) =>
  `bgc-test:keyv:${what}:${process.pid}:${randomUUID().slice(0, 8)}:`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
