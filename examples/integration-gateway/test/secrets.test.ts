// Secrets never appear in logs (any level, start-up failures included), errors, /readyz, /metrics
// or answers. Table-driven over passwords holding `/ @ + % :` in every URL variable, `?password=`
// parameters, REDIS_PASSWORD and ADMIN_TOKEN: each row starts `node dist/main.js` (as the
// Dockerfile does) at LOG_LEVEL=trace, exercises every route, and searches everything it wrote and
// answered for the secret in each of its spellings (raw, percent-encoded, JSON-escaped).
import { spawn } from 'node:child_process';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSecrets, redactUrl, scrubSecrets } from '../src/secrets.js';
import { freePort, MAIN, testConnectorYaml } from './helpers.js';

/** Passwords with every character that breaks naive URL handling. */
const PASSWORDS = ['pa/ss@w+rd%3A:x9Qz', 'Zm9v/YmFy+cXV4@:%25==', 'we:ird@pass/word+%'];

/** Every spelling under which a secret could leak. */
function spellings(secret: string): string[] {
  const out = new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]);
  try {
    out.add(decodeURIComponent(secret));
  } catch {}
  return [...out].filter((s) => s.length >= 4);
}

function expectNoSecret(text: string, secret: string, where: string): void {
  for (const s of spellings(secret))
    expect(text.includes(s), `${where} holds ${JSON.stringify(s)}`).toBe(false);
}

describe('redactUrl', () => {
  it.each(
    PASSWORDS.flatMap((pw) => [
      [`redis://gw:${pw}@cache.internal:6379/0`, pw, 'cache.internal:6379'],
      [`redis://gw:${encodeURIComponent(pw)}@cache.internal:6379`, pw, 'cache.internal:6379'],
      [`rediss://:${encodeURIComponent(pw)}@cache.internal`, pw, 'cache.internal'],
      [`redis://${encodeURIComponent(pw)}@cache.internal:6379`, pw, 'cache.internal:6379'],
      [`gw:${pw}@cache.internal:6379`, pw, 'cache.internal:6379'],
      [`postgres://bgc:${pw}@db.internal:5432/bgc`, pw, 'db.internal'],
      [
        `postgres://bgc@db.internal/bgc?password=${encodeURIComponent(pw)}&sslmode=require`,
        pw,
        'db.internal',
      ],
      [`https://user:${encodeURIComponent(pw)}@proxy.internal/comexstat`, pw, 'proxy.internal'],
      [`https://proxy.internal/comexstat?token=${encodeURIComponent(pw)}`, pw, 'proxy.internal'],
    ]),
  )('%s: no password, host kept', (url, pw, host) => {
    const out = redactUrl(url) as string;
    expectNoSecret(out, pw, out);
    expect(out).toContain(host);
  });

  it('keeps URLs without credentials as they are', () => {
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
    expect(redactUrl('redis://gateway:@h:6379')).toBe('redis://gateway@h:6379');
    expect(redactUrl('postgres://bgc@db/x')).toBe('postgres://bgc@db/x');
    expect(redactUrl('h:6379')).toBe('h:6379');
    expect(redactUrl('postgres://db/x?sslmode=require')).toBe('postgres://db/x?sslmode=require');
    expect(redactUrl(undefined)).toBeUndefined();
  });

  it('reduces an unparseable value to its scheme and host', () => {
    expect(redactUrl('redis://u:a/b@h:99999')).toBe('redis://***@h:99999');
    expect(redactUrl('http://[broken')).toBe('http://<unparseable>');
  });
});

describe('collectSecrets / scrubSecrets', () => {
  it('finds the credentials of every URL variable and every secret variable, in every spelling', () => {
    const pw = PASSWORDS[0] as string;
    const env = {
      REDIS_ADDR: `redis://gw:${pw}@h:6379`,
      DATABASE_URL: `postgres://u@db/x?password=${encodeURIComponent(pw)}`,
      COMEXSTAT_BASE_URL: `https://u:${encodeURIComponent(pw)}@proxy/`,
      REDIS_PASSWORD: 'another-secret-value',
      ADMIN_TOKEN: 'admin-token-0123456789',
    };
    const secrets = collectSecrets(env);
    const text = JSON.stringify({
      msg: `${pw} ${encodeURIComponent(pw)} another-secret-value admin-token-0123456789`,
    });
    const clean = scrubSecrets(text, secrets);
    expectNoSecret(clean, pw, clean);
    expect(clean).not.toContain('another-secret-value');
    expect(clean).not.toContain('admin-token-0123456789');
    expect(clean).toContain('***');
  });
});

/** One row: the environment that carries `secret`, and whether the gateway can start with it. */
interface Row {
  name: string;
  secret: string;
  env: (ctx: { sim: string }) => Record<string, string>;
}

const ROWS: Row[] = PASSWORDS.flatMap((pw, i): Row[] => [
  {
    name: `REDIS_ADDR raw password #${i}`,
    secret: pw,
    env: () => ({ CACHE_L2_ENABLED: 'true', REDIS_ADDR: `redis://gw:${pw}@127.0.0.1:1` }),
  },
  {
    name: `REDIS_ADDR encoded password #${i}`,
    secret: pw,
    env: () => ({
      CACHE_L2_ENABLED: 'true',
      REDIS_ADDR: `redis://gw:${encodeURIComponent(pw)}@127.0.0.1:1/2`,
    }),
  },
  {
    name: `REDIS_ADDR password as the lone userinfo #${i}`,
    secret: pw,
    env: () => ({ CACHE_L2_ENABLED: 'true', REDIS_ADDR: `redis://${encodeURIComponent(pw)}@127.0.0.1:1` }),
  },
  {
    name: `REDIS_ADDR host:port with userinfo #${i}`,
    secret: pw,
    env: () => ({ CACHE_L2_ENABLED: 'true', REDIS_ADDR: `gw:${pw}@127.0.0.1:1` }),
  },
  {
    name: `REDIS_PASSWORD #${i}`,
    secret: pw,
    env: () => ({ CACHE_L2_ENABLED: 'true', REDIS_ADDR: '127.0.0.1:1', REDIS_PASSWORD: pw }),
  },
  {
    name: `DATABASE_URL password #${i}`,
    secret: pw,
    env: () => ({ DATABASE_URL: `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:1/test` }),
  },
  {
    name: `DATABASE_URL ?password= #${i}`,
    secret: pw,
    env: () => ({ DATABASE_URL: `postgres://postgres@127.0.0.1:1/test?password=${encodeURIComponent(pw)}` }),
  },
  {
    name: `COMEXSTAT_BASE_URL credentials #${i}`,
    secret: pw,
    env: ({ sim }) => ({
      COMEXSTAT_BASE_URL: sim.replace('http://', `http://user:${encodeURIComponent(pw)}@`),
    }),
  },
  {
    name: `COMEXSTAT_BASE_URL unparseable with credentials #${i}`,
    secret: pw,
    env: () => ({ COMEXSTAT_BASE_URL: `http://user:${pw}@127.0.0.1:99999/` }),
  },
  {
    name: `ADMIN_TOKEN #${i}`,
    secret: `${pw}-long-admin-token`,
    env: () => ({ ADMIN_TOKEN: `${pw}-long-admin-token` }),
  },
  {
    name: `ADMIN_TOKEN too short #${i}`,
    secret: pw.slice(0, 12),
    env: () => ({ ADMIN_TOKEN: pw.slice(0, 12) }),
  },
]);

let sim: ComexStatSimulator;
let yaml: string;
beforeAll(async () => {
  sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 1, perRowMs: 0 } });
  yaml = testConnectorYaml();
});
afterAll(async () => {
  await sim?.close();
});

/** Starts the gateway with `env`; returns what it wrote and answered (it may fail to start). */
async function exercise(
  env: Record<string, string>,
): Promise<{ started: boolean; text: string; code: number | null }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'trace',
      CACHE_CONNECT_TIMEOUT: '300ms',
      CACHE_LOAD_HARD_TIMEOUT: '3s',
      COMEXSTAT_BASE_URL: sim.url,
      COMEXSTAT_CONFIG: yaml,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (d) => (text += d));
  child.stderr?.on('data', (d) => (text += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const api = `http://127.0.0.1:${port}`;
  let started = false;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${api}/healthz`)).ok) {
        started = true;
        break;
      }
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  if (started) {
    const year = sim.release.year - 1;
    const requests: [string, RequestInit?][] = [
      [`${api}/readyz`],
      [`${api}/healthz`],
      [`http://127.0.0.1:${metricsPort}/metrics`],
      [`${api}/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`],
      [`${api}/comexstat/importacao_mes?ano=${year}&mes=4&ncm=12019000&pais=160`],
      [`${api}/comexstat/exportacao_mes?ano=1900&mes=3&ncm=12019000&pais=160`],
      [`${api}/nope`],
      [
        `${api}/admin/cache/invalidate`,
        {
          method: 'POST',
          headers: { authorization: 'Bearer wrong-token-wrong-token', 'content-type': 'application/json' },
          body: '{"keys":["k"]}',
        },
      ],
    ];
    for (const [url, init] of requests) {
      const r = await fetch(url, init);
      text += `\n${url} ${r.status} ${JSON.stringify([...r.headers])} ${await r.text()}`;
    }
    child.kill('SIGTERM');
  }
  const code = await exited;
  return { started, text, code };
}

describe('no secret in logs, errors, /readyz, /metrics or answers (node dist/main.js, LOG_LEVEL=trace)', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))(
    '%s',
    async (_name, row) => {
      const { started, text, code } = await exercise(row.env({ sim: sim.url }));
      // Something was written either way (start-up line or the failure), and it is clean.
      expect(text.length).toBeGreaterThan(0);
      expectNoSecret(text, row.secret, text);
      if (row.name.startsWith('ADMIN_TOKEN too short')) {
        expect(started).toBe(false);
        expect(code).toBe(1);
        expect(text).toMatch(/\[E_CONFIG\] Invalid configuration ADMIN_TOKEN/);
      } else if (!started) {
        // A configuration the gateway refuses (e.g. a REDIS_ADDR it cannot parse): exit 1 with a clean message.
        expect(code).toBe(1);
        expect(text).toMatch(/failed to start: \[E_CONFIG\]/);
      }
    },
    60_000,
  );
});
