import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** A tiny HTTP server answering `GET /metrics` with the registry's exposition (the seed's `:8081/metrics`). */
export function createMetricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: Error) =>
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`metrics collection failed: ${error.message}\n`),
    );
  });
}
