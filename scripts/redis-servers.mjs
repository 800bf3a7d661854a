// Starts throw-away redis-server processes (standalone, with a password, or a cluster of masters)
// on free loopback ports in a temp dir, for tests. Every server is stopped by `stop()`, and by a
// process exit hook as a last resort, so no test leaves a server behind.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const live = new Set();
process.once('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1 whose cluster bus port (+10000) is free too. */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if ((await portFree(port)) && (await portFree(port + 10000))) return port;
  }
  throw new Error('no free port found on 127.0.0.1');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cli(port, password, ...args) {
  const auth = password ? ['-a', password, '--no-auth-warning'] : [];
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], {
    encoding: 'utf8',
    timeout: 10000,
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
}

async function waitReady(port, password, child) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`redis-server on port ${port} exited with code ${child.exitCode}`);
    try {
      if (cli(port, password, 'PING') === 'PONG') return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

/**
 * Starts one redis-server.
 * @param {{ password?: string, port?: number, args?: string[] }} [options]
 * @returns {Promise<RedisServer>}
 */
export async function startRedis(options = {}) {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'bgc-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    path.join(dir, 'redis.log'),
  ];
  if (options.password) args.push('--requirepass', options.password);
  args.push(...(options.args ?? []));
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  live.add(child);
  child.once('exit', () => live.delete(child));
  await waitReady(port, options.password, child);
  const server = {
    host: '127.0.0.1',
    port,
    dir,
    password: options.password,
    get pid() {
      return child.pid;
    },
    url: options.password
      ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    /** Runs redis-cli against this server and returns its output. */
    cli: (...a) => cli(port, server.password, ...a),
    /** Sends a signal (SIGSTOP, SIGCONT, SIGKILL...). */
    signal: (sig) => child.kill(sig),
    /** Kills the server (SIGKILL) and waits for it to exit; keeps the dir so `restart()` can reuse the port. */
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
    /** Starts a new server on the same port and dir (after kill). */
    restart: async (overrides = {}) => {
      await server.kill();
      const again = await startRedis({ ...options, ...overrides, port, dir });
      Object.assign(server, {
        stop: again.stop,
        kill: again.kill,
        signal: again.signal,
        restart: again.restart,
        password: again.password,
      });
      Object.defineProperty(server, 'pid', { get: () => again.pid, configurable: true });
      return server;
    },
    /** Stops the server and removes its dir. */
    stop: async () => {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Starts a Redis Cluster of `masters` masters (no replicas) on free ports and waits until every
 * slot is served.
 * @param {{ masters?: number, password?: string }} [options]
 */
export async function startRedisCluster(options = {}) {
  const masters = options.masters ?? 3;
  const nodes = [];
  try {
    for (let i = 0; i < masters; i++) {
      const extra = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
      ];
      if (options.password) extra.push('--masterauth', options.password);
      nodes.push(await startRedis({ password: options.password, args: extra }));
    }
    const auth = options.password ? ['-a', options.password, '--no-auth-warning'] : [];
    execFileSync(
      'redis-cli',
      [
        ...auth,
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30000 },
    );
    const deadline = Date.now() + 20000;
    for (;;) {
      const ok = nodes.every((n) => /cluster_state:ok/.test(n.cli('CLUSTER', 'INFO')));
      if (ok) break;
      if (Date.now() > deadline) throw new Error('Redis Cluster did not reach cluster_state:ok within 20 s');
      await sleep(100);
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    nodes,
    /** Startup nodes in ioredis's `new Cluster(...)` form. */
    startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

// `node scripts/redis-servers.mjs [standalone|password|cluster]` starts one and keeps it up until Ctrl-C.
if (import.meta.url === `file://${process.argv[1]}`) {
  const kind = process.argv[2] ?? 'standalone';
  const started =
    kind === 'cluster'
      ? await startRedisCluster()
      : await startRedis(kind === 'password' ? { password: 's3cret' } : {});
  console.log(JSON.stringify(kind === 'cluster' ? { nodes: started.startupNodes } : { url: started.url }));
  const stop = async () => {
    await started.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
