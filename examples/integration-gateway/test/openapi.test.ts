// OpenAPI 3.1 at /openapi.json, generated from the routes' schemas, validated by a well-kept
// validator (@readme/openapi-parser), listing every route; the interactive page at /docs.
import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { compileErrors, validate } from '@readme/openapi-parser';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server.js';

const app = createApp({
  cache: new MultiLevelCache({ tiers: [new MemoryTier()] }),
  fetchMonth: async () => ({ rows: [], level: 'l1', stale: false }),
  adminToken: 'a-long-enough-admin-token-0123',
  logger: pino({ level: 'silent' }),
});
// biome-ignore lint/suspicious/noExplicitAny: the document is checked by the validator, then read loosely
let doc: any;
beforeAll(async () => {
  const r = await app.inject({ method: 'GET', url: '/openapi.json' });
  expect(r.statusCode).toBe(200);
  doc = r.json();
});
afterAll(() => app.close());

describe('OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc));
    if (!result.valid) console.log(compileErrors(result));
    expect(result.valid).toBe(true);
  });

  it('lists every route of the app, and only those', () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(
      [
        'GET /comexstat/exportacao_mes',
        'GET /comexstat/importacao_mes',
        'GET /comexstat/exportacao',
        'GET /comexstat/importacao',
        'POST /admin/cache/invalidate',
        'GET /healthz',
        'GET /readyz',
      ].sort(),
    );
  });

  it('documents parameters, the error shape, the cache headers and the admin security', () => {
    const month = doc.paths['/comexstat/exportacao_mes'].get;
    expect(month.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'ano',
      'mes',
      'ncm',
      'pais',
    ]);
    expect(Object.keys(month.responses).sort()).toEqual(['200', '304', '400', '429', '502', '503']);
    const ok = month.responses['200'];
    expect(Object.keys(ok.headers)).toEqual(
      expect.arrayContaining(['etag', 'cache-control', 'last-modified', 'age', 'x-cache-level']),
    );
    const bad = month.responses['400'];
    expect(bad.content['application/json'].schema.properties.error.required).toEqual(['code', 'message']);
    expect(Object.keys(month.responses['503'].headers)).toContain('retry-after');
    const series = doc.paths['/comexstat/importacao'].get;
    expect(series.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'ate',
      'de',
      'ncm',
      'pais',
    ]);
    const admin = doc.paths['/admin/cache/invalidate'].post;
    expect(admin.security).toEqual([{ adminToken: [] }]);
    // The body: keys and/or tags (bounded), the mode; the answer says what was invalidated.
    const body = admin.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties).sort()).toEqual(['keys', 'mode', 'tags']);
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.tags).toMatchObject({ type: 'array', minItems: 1, maxItems: 64 });
    expect(body.properties.keys).toMatchObject({ type: 'array', minItems: 1, maxItems: 10_000 });
    expect(body.properties.mode.enum).toEqual(['delete', 'expire']);
    expect(admin.description).toMatch(/comexstat:ncm:<ncm>/);
    expect(Object.keys(admin.responses['200'].content['application/json'].schema.properties).sort()).toEqual([
      'invalidated',
      'mode',
      'tags',
    ]);
    expect(admin.responses['400'].description).toMatch(/E_INVALID_TAG/);
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('serves the interactive page at /docs', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.body).toMatch(/swagger-ui/i);
  });
});
