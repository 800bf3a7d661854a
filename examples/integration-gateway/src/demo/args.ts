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
  /**
   * A cold start: no warming, the demo's usual spacing against the simulator's rate limit, to show
   * the first request's latency, the 503s and the upstream calls of an empty cache. @default false
   */
  cold: boolean;
  /** Requests replayed after restarting the gateway (L1 cold, L3 answers). @default requests / 5 */
  restartRequests: number;
}

/**
 * Parses `--instances N --requests N --concurrency N --restart-requests N --cold --json`; throws on
 * anything else.
 */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const out: DemoArgs = {
    instances: 1,
    requests: 20_000,
    concurrency: 32,
    json: false,
    cold: false,
    restartRequests: 0,
  };
  let restart: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') out.json = true;
    else if (a === '--cold') out.cold = true;
    else if (a === '--restart-requests') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0)
        throw new Error(`${a} needs a non-negative integer, got ${JSON.stringify(argv[i])}`);
      restart = v;
    } else if (a === '--') continue;
    else if (a === '--instances' || a === '--requests' || a === '--concurrency') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1)
        throw new Error(`${a} needs a positive integer, got ${JSON.stringify(argv[i])}`);
      out[a.slice(2) as 'instances' | 'requests' | 'concurrency'] = v;
    } else
      throw new Error(
        `unknown argument ${JSON.stringify(a)}; use --instances N, --requests N, --concurrency N, --restart-requests N, --cold, --json`,
      );
  }
  if (out.instances > 8) throw new Error('--instances is at most 8 on this demo');
  out.restartRequests = restart ?? Math.ceil(out.requests / 5);
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
