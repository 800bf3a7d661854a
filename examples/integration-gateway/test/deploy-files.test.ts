// The deployment files are shipped, not run (no Docker engine here): parse every one and check
// the fields the gateway depends on.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { loadConnectorConfig } from '@bgc/connector-comexstat';
import { startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { startRedis } from '../../../scripts/redis-servers.mjs';
import { here, startGatewayProcess } from './helpers.js';

const root = path.resolve(here, '..');
const k8sDir = path.join(root, 'deploy/k8s');
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML documents are untyped; the assertions check their shape
type Doc = Record<string, any>;
const docs: Doc[] = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => ({
      ...(d.toJS() as Doc),
      __file: f,
    })),
  );
const find = (kind: string, name: string) => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return d;
};

describe('Dockerfile', () => {
  const text = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  it('is multi-stage, runs as non-root, and starts dist/main.js', () => {
    expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^FROM node:20\S* AS build$/m);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    expect(text).toContain('--frozen-lockfile');
    expect(text).toMatch(/EXPOSE 8080 8081/);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as Doc;
  it('runs the cache Redis (512 MB volatile-lru) and a coordination Redis (noeviction), both with passwords and a gateway ACL user, no published port', () => {
    const cache = compose.services.redis;
    const coord = compose.services['redis-coord'];
    for (const [svc, memory, policy] of [
      [cache, '512mb', 'volatile-lru'],
      [coord, '64mb', 'noeviction'],
    ] as const) {
      expect(svc.image).toBe('redis:7-alpine');
      const cmd = (svc.command as string[]).join(' ');
      expect(cmd).toContain(`--maxmemory ${memory}`);
      expect(cmd).toContain(`--maxmemory-policy ${policy}`);
      expect(cmd).toMatch(/--requirepass \$\{REDIS_ADMIN_PASSWORD/);
      expect(cmd).toMatch(/--user gateway on >\$\{REDIS_PASSWORD[^}]*\} ~bgc:\* &bgc:\* \+@all -@dangerous/);
      expect(svc.ports).toBeUndefined();
      expect(svc.healthcheck.test.join(' ')).toContain('ping');
    }
  });
  it('runs PostgreSQL, the gateway with the seed variables, Prometheus and Grafana', () => {
    expect(compose.services.postgres.image).toMatch(/^postgres:15/);
    const gw = compose.services['integration-gateway'];
    const env = Object.fromEntries((gw.environment as string[]).map((e) => e.split(/=(.*)/s).slice(0, 2)));
    expect(env).toMatchObject({
      REDIS_ADDR: 'redis://gateway:@redis:6379',
      COORD_REDIS_ADDR: 'redis://gateway:@redis-coord:6379',
      CACHE_L1_ENABLED: 'true',
      CACHE_L2_ENABLED: 'true',
      CACHE_L3_ENABLED: 'true',
      METRICS_PORT: '8081',
    });
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\//);
    expect(gw.depends_on.redis.condition).toBe('service_healthy');
    expect(gw.depends_on['redis-coord'].condition).toBe('service_healthy');
    expect(env.REDIS_PASSWORD).toMatch(/^\$\{REDIS_PASSWORD/);
    expect(gw.ports).toContain('8081:8081');
    expect(compose.services.prometheus.image).toMatch(/^prom\/prometheus/);
    expect(compose.services.grafana.image).toMatch(/^grafana\/grafana/);
  });
  it('mounts files that exist', () => {
    for (const svc of ['prometheus', 'grafana']) {
      for (const v of compose.services[svc].volumes as string[]) {
        const src = v.split(':')[0] as string;
        expect(existsSync(path.resolve(root, src)), `${svc} mounts ${src}`).toBe(true);
      }
    }
    const prom = parse(readFileSync(path.join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as Doc;
    expect(prom.scrape_configs[0].static_configs[0].targets).toEqual(['integration-gateway:8081']);
  });
});

describe('Kubernetes manifests', () => {
  it('Deployment: probes on /healthz and /readyz, resources, non-root, secrets by reference', () => {
    const dep = find('Deployment', 'integration-gateway');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.resources.requests.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.ports.map((p: Doc) => p.containerPort)).toEqual([8080, 8081]);
    const secretEnv = c.env.filter((e: Doc) => e.valueFrom?.secretKeyRef).map((e: Doc) => e.name);
    expect(secretEnv).toEqual(expect.arrayContaining(['REDIS_PASSWORD', 'DATABASE_URL', 'ADMIN_TOKEN']));
    expect(JSON.stringify(dep)).not.toMatch(/change-me/);
    expect(c.envFrom[0].configMapRef.name).toBe('integration-gateway-config');
  });

  it('Service, HPA and PDB target the gateway', () => {
    expect(find('Service', 'integration-gateway').spec.selector).toEqual({
      'app.kubernetes.io/name': 'integration-gateway',
    });
    const hpa = find('HorizontalPodAutoscaler', 'integration-gateway');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'integration-gateway' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(find('PodDisruptionBudget', 'integration-gateway').spec.minAvailable).toBeGreaterThanOrEqual(1);
  });

  it('ConfigMap holds the seed variables and a connector YAML that parses', () => {
    const cm = find('ConfigMap', 'integration-gateway-config');
    expect(cm.data).toMatchObject({
      CACHE_L1_MAX_SIZE_MB: '100',
      CACHE_L1_DEFAULT_TTL: '5m',
      REDIS_ADDR: 'redis://gateway:@redis:6379',
      COORD_REDIS_ADDR: 'redis://gateway:@redis-coord:6379',
      CACHE_L2_PREFIX: 'bgc:c:',
      CACHE_COORD_PREFIX: 'bgc:x:',
    });
    const cfg = loadConnectorConfig(cm.data['comexstat.yaml'], { env: {} });
    expect(cfg.cache.ttlMs).toBe(168 * 3_600_000);
    expect(cfg.cache.keyPattern).toBe('comexstat:exp:{ano}:{mes}:{ncm}:{pais}');
    const shipped = loadConnectorConfig(readFileSync(path.join(root, 'config/comexstat.yaml'), 'utf8'), {
      env: {},
    });
    expect(shipped.warming.topCountries).toHaveLength(10);
    // The CronJob warms what the shipped YAML lists: 18 NCMs × 10 countries × 12 months × 2 flows.
    expect(cfg.warming).toEqual(shipped.warming);
    expect(cfg.warming.topNcms.length * cfg.warming.topCountries.length * cfg.warming.months * 2).toBe(4320);
  });

  it('Redis: the cache on volatile-lru, coordination on noeviction, both with passwords from the Secret and a gateway ACL user', () => {
    for (const [name, policy] of [
      ['redis', 'volatile-lru'],
      ['redis-coord', 'noeviction'],
    ] as const) {
      const c = find('Deployment', name).spec.template.spec.containers[0];
      const args = c.args.join(' ');
      expect(args).toContain(`--maxmemory-policy ${policy}`);
      expect(args).toContain('--requirepass $(REDIS_ADMIN_PASSWORD)');
      expect(args).toContain('--user gateway on >$(REDIS_PASSWORD) ~bgc:* &bgc:* +@all -@dangerous');
      const fromSecret = c.env.filter(
        (e: Doc) => e.valueFrom?.secretKeyRef?.name === 'integration-gateway-secrets',
      );
      expect(fromSecret.map((e: Doc) => e.name).sort()).toEqual(['REDIS_ADMIN_PASSWORD', 'REDIS_PASSWORD']);
      expect(fromSecret.every((e: Doc) => e.valueFrom.secretKeyRef.optional !== true)).toBe(true);
      expect(find('Service', name).spec.ports[0].port).toBe(6379);
    }
    const secret = find('Secret', 'integration-gateway-secrets');
    expect(Object.keys(secret.stringData).sort()).toEqual(
      ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_ADMIN_PASSWORD', 'REDIS_PASSWORD'].sort(),
    );
    expect(JSON.stringify(secret)).not.toMatch(/change-me/);
  });

  it('NetworkPolicy: only pods labelled bgc.io/redis-client (the gateway, the warming job) reach either Redis', () => {
    const np = find('NetworkPolicy', 'redis-allow-gateway-only');
    expect(np.spec.podSelector.matchExpressions).toEqual([
      { key: 'app.kubernetes.io/name', operator: 'In', values: ['redis', 'redis-coord'] },
    ]);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { 'bgc.io/redis-client': 'true' } } }],
        ports: [{ protocol: 'TCP', port: 6379 }],
      },
    ]);
    const gwPod = find('Deployment', 'integration-gateway').spec.template.metadata.labels;
    expect(gwPod['bgc.io/redis-client']).toBe('true');
    const warmPod = find('CronJob', 'comexstat-warm-cache').spec.jobTemplate.spec.template.metadata.labels;
    expect(warmPod['bgc.io/redis-client']).toBe('true');
    // The job's pods never join the gateway's Service.
    const selector = find('Service', 'integration-gateway').spec.selector;
    for (const [k, v] of Object.entries(selector)) expect(warmPod[k]).not.toBe(v);
  });

  it('runs as declared: the manifest Redis args and ACL, the gateway with the ConfigMap env and the Secret (live)', async () => {
    const adminPw = 'admin-pw/with+special@chars';
    const gwPw = 'gw-pw/with+special@chars:0';
    const expand = (a: string) =>
      a.replace('$(REDIS_ADMIN_PASSWORD)', adminPw).replace('$(REDIS_PASSWORD)', gwPw);
    const serverArgs = (name: string): string[] => {
      const args = (find('Deployment', name).spec.template.spec.containers[0].args as string[]).map(expand);
      // startRedis sets the admin password itself (--requirepass), port and directory.
      const i = args.indexOf('--requirepass');
      return args.slice(1, i).concat(args.slice(i + 2));
    };
    const cache = await startRedis({ password: adminPw, args: serverArgs('redis') });
    const coord = await startRedis({ password: adminPw, args: serverArgs('redis-coord') });
    const sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 1, perRowMs: 0 } });
    const cm = find('ConfigMap', 'integration-gateway-config').data as Record<string, string>;
    const dir = mkdtempSync(path.join(tmpdir(), 'bgc-deploy-'));
    writeFileSync(path.join(dir, 'comexstat.yaml'), cm['comexstat.yaml'] as string);
    const env: Record<string, string> = Object.fromEntries(
      Object.entries(cm).filter(([k]) => /^[A-Z0-9_]+$/.test(k)),
    );
    Object.assign(env, {
      REDIS_ADDR: (env.REDIS_ADDR as string).replace('@redis:6379', `@127.0.0.1:${cache.port}`),
      COORD_REDIS_ADDR: (env.COORD_REDIS_ADDR as string).replace(
        '@redis-coord:6379',
        `@127.0.0.1:${coord.port}`,
      ),
      REDIS_PASSWORD: gwPw,
      CACHE_L3_ENABLED: 'false',
      COMEXSTAT_CONFIG: path.join(dir, 'comexstat.yaml'),
      COMEXSTAT_BASE_URL: sim.url,
      COMEXSTAT_MIN_INTERVAL_MS: '1',
    });
    const gw = await startGatewayProcess(env);
    try {
      const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as { tiers: Record<string, string> };
      expect(ready.tiers.l2).toBe('up');
      const r = await fetch(
        `${gw.url}/comexstat/exportacao_mes?ano=${sim.release.year - 1}&mes=3&ncm=12019000&pais=160`,
      );
      expect(r.status).toBe(200);
      await gw.stop('SIGTERM');
      // Entries in the cache Redis under bgc:c:, coordination keys in the other under bgc:x:.
      expect(cache.cli('--scan', '--pattern', 'bgc:c:*')).toContain('bgc:c:comexstat:exp:');
      expect(cache.cli('--scan', '--pattern', 'bgc:x:*')).toBe('');
      // The spacer's and locks' scripts ran on the coordination Redis (their keys live only as long
      // as a 1 ms spacing, so their count is what is checked, not their presence).
      expect(scriptCalls(coord.cli('INFO', 'commandstats'))).toBeGreaterThan(0);
      // The gateway user: its keys only, no dangerous command; no anonymous access.
      const asGateway = (port: number, ...args: string[]) =>
        spawnSync(
          'redis-cli',
          ['-p', String(port), '--user', 'gateway', '--pass', gwPw, '--no-auth-warning', ...args],
          {
            encoding: 'utf8',
          },
        ).stdout;
      expect(asGateway(cache.port, 'SET', 'other:key', '1')).toMatch(/NOPERM/);
      expect(asGateway(cache.port, 'FLUSHALL')).toMatch(/NOPERM/);
      expect(asGateway(cache.port, 'CONFIG', 'GET', 'maxmemory-policy')).toMatch(/NOPERM/);
      expect(asGateway(coord.port, 'SET', 'bgc:x:probe', '1')).toMatch(/OK/);
      expect(
        spawnSync('redis-cli', ['-p', String(cache.port), 'GET', 'x'], { encoding: 'utf8' }).stdout,
      ).toMatch(/NOAUTH/);
      expect(cache.cli('CONFIG', 'GET', 'maxmemory-policy')).toContain('volatile-lru');
      expect(coord.cli('CONFIG', 'GET', 'maxmemory-policy')).toContain('noeviction');
      expect(gw.output()).not.toContain(gwPw);
    } finally {
      await gw.stop('SIGKILL');
      await sim.close();
      await cache.stop();
      await coord.stop();
    }
  }, 60_000);

  it('CronJobs: weekly warming and the daily 03:00 aggregates refresh', () => {
    const warm = find('CronJob', 'comexstat-warm-cache');
    expect(warm.spec.schedule.split(' ')).toHaveLength(5);
    expect(warm.spec.schedule.split(' ')[4]).toMatch(/^[0-6]$/);
    expect(warm.spec.jobTemplate.spec.template.spec.containers[0].command).toEqual(['node', 'dist/warm.js']);
    const refresh = find('CronJob', 'comexstat-refresh-aggregates');
    expect(refresh.spec.schedule).toBe('0 3 * * *');
    expect(refresh.spec.jobTemplate.spec.template.spec.containers[0].command).toContain('refresh-aggregates');
    for (const cj of [warm, refresh]) expect(cj.spec.concurrencyPolicy).toBe('Forbid');
  });

  it('kustomization lists every manifest but the example secret', () => {
    const k = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as Doc;
    const files = readdirSync(k8sDir).filter(
      (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !f.includes('example'),
    );
    expect([...k.resources].sort()).toEqual(files.sort());
  });
});

/** How many Lua script calls (EVAL, EVALSHA, FCALL) a Redis served, from `INFO commandstats`. */
function scriptCalls(info: string): number {
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha|eval_ro|evalsha_ro|fcall):calls=(\d+)/gm))
    n += Number(m[1]);
  return n;
}
