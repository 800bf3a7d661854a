// Makes sure the Redis and PostgreSQL that integration tests use are up on loopback, starting them
// with the machine's own commands when they are down. Exits non-zero with a clear message when one
// cannot be reached.
import { execSync } from 'node:child_process';
import net from 'node:net';

const services = [
  {
    name: 'Redis',
    host: '127.0.0.1',
    port: 6379,
    start:
      'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  },
  {
    name: 'PostgreSQL',
    host: '127.0.0.1',
    port: 5432,
    start: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  },
];

function reachable(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

let failed = false;
for (const svc of services) {
  if (await reachable(svc.host, svc.port)) {
    console.log(`${svc.name}: up on ${svc.host}:${svc.port}`);
    continue;
  }
  console.log(`${svc.name}: down, starting it: ${svc.start}`);
  try {
    execSync(svc.start, { stdio: 'inherit', shell: '/bin/bash' });
  } catch (err) {
    console.error(`${svc.name}: start command failed: ${err.message}`);
  }
  let up = false;
  for (let i = 0; i < 50 && !up; i++) {
    up = await reachable(svc.host, svc.port);
    if (!up) await new Promise((r) => setTimeout(r, 200));
  }
  if (up) console.log(`${svc.name}: up on ${svc.host}:${svc.port}`);
  else {
    console.error(
      `${svc.name}: not reachable on ${svc.host}:${svc.port}; integration tests need it (see the test command in README.md)`,
    );
    failed = true;
  }
}

// promtool (Debian package `prometheus`) validates the metrics exposition, alert rules and dashboard
// in @bgc/cache-metrics-prometheus's tests. Installed here when missing and apt-get can run.
function has(cmd) {
  try {
    execSync(`command -v ${cmd}`, { stdio: 'ignore', shell: '/bin/bash' });
    return true;
  } catch {
    return false;
  }
}
if (!has('promtool')) {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root && has('apt-get')) {
    console.log('promtool: missing, installing the Debian package prometheus');
    try {
      execSync(
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null',
        { stdio: 'inherit', shell: '/bin/bash' },
      );
    } catch (err) {
      console.error(`promtool: install failed: ${err.message}`);
    }
  }
  if (has('promtool')) console.log('promtool: installed');
  else {
    console.error(
      'promtool: not found; the metrics tests need it. Install it: apt-get install -y prometheus (Debian package)',
    );
    failed = true;
  }
} else console.log('promtool: found');
process.exit(failed ? 1 : 0);
