// The limit of the gateway-http scenario: a bare Fastify route answering the gateway's URLs with
// the same JSON objects from a Map, no validation, no cache. Started as a child process (like the
// gateway) with the payload file in BARE_PAYLOADS and the port in PORT; prints `listening <port>`.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const payloads = new Map<string, unknown>(
  Object.entries(
    JSON.parse(readFileSync(process.env.BARE_PAYLOADS as string, 'utf8')) as Record<string, unknown>,
  ),
);
const app = Fastify({ logger: false });
app.get('/comexstat/:endpoint', async (request, reply) => {
  const body = payloads.get(request.url);
  if (body === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: request.url } });
  reply.header('x-cache-level', 'l1');
  return body;
});
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.stdout.write(`listening ${new URL(address).port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
