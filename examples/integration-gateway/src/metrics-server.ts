import { createServer, type Server } from 'node:http';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type AdminRouteOptions, registerAdminRoute } from './server.js';

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

/** Options of {@link createMetricsApp}. */
export interface MetricsAppOptions {
  registry: Registry;
  logger: Logger;
  /** Also serve `POST /admin/cache/invalidate` here (ADMIN_ON_METRICS_PORT). */
  admin?: AdminRouteOptions | undefined;
}

/**
 * The metrics port as a Fastify app: `GET /metrics`, and the admin route when `admin` is given
 * (so that it is reachable only on the internal port, not on the public one).
 */
export function createMetricsApp(options: MetricsAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (error.validation)
      return reply
        .code(400)
        .send({ error: { code: 'E_INVALID_PARAMETER', message: `Invalid body: ${error.message}` } });
    if (status < 500)
      return reply
        .code(status)
        .send({ error: { code: error.code ?? 'E_BAD_REQUEST', message: error.message } });
    request.log.error({ err: { message: error.message } }, 'unexpected error');
    return reply
      .code(500)
      .send({ error: { code: 'E_INTERNAL', message: 'Unexpected error; see the gateway logs' } });
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).type('text/plain').send('not found; metrics are at /metrics\n'),
  );
  app.get('/metrics', async (_request, reply) => {
    const body = await options.registry.metrics();
    return reply.type(options.registry.contentType).send(body);
  });
  if (options.admin) registerAdminRoute(app, options.admin);
  return app;
}
