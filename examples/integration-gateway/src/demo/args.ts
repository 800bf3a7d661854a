import net from 'node:net';

/** Command-line options of the demo. */
export interface DemoArgs {
  /** Gateway processes sharing Redis and PostgreSQL. @default 1 */
  instances: number;
  /** Requests in the simulated day. @default 20000 */
  requests: number;
  /** Concurrent clients. @default 32 */
  concurrency: number;
  /** Print the final figures as one JSON object. */
  json: boolean;
}

/** Parses `--instances N --requests N --concurrency N --json`; throws on anything else. */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const out: DemoArgs = { instances: 1, requests: 20_000, concurrency: 32, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') out.json = true;
    else if (a === '--') continue;
    else if (a === '--instances' || a === '--requests' || a === '--concurrency') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1)
        throw new Error(`${a} needs a positive integer, got ${JSON.stringify(argv[i])}`);
      out[a.slice(2) as 'instances' | 'requests' | 'concurrency'] = v;
    } else
      throw new Error(
        `unknown argument ${JSON.stringify(a)}; use --instances N, --requests N, --concurrency N, --json`,
      );
  }
  if (out.instances > 8) throw new Error('--instances is at most 8 on this demo');
  return out;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
