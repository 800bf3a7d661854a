// The deployment files are shipped, not run (no Docker engine here): parse every one and check
// the fields the gateway depends on.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConnectorConfig } from '@bgc/connector-comexstat';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { here } from './helpers.js';

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
  it('runs redis:7-alpine with 512 MB allkeys-lru and a healthcheck', () => {
    const redis = compose.services.redis;
    expect(redis.image).toBe('redis:7-alpine');
    expect(redis.command).toContain('--maxmemory 512mb');
    expect(redis.command).toContain('--maxmemory-policy allkeys-lru');
    expect(redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });
  it('runs PostgreSQL, the gateway with the seed variables, Prometheus and Grafana', () => {
    expect(compose.services.postgres.image).toMatch(/^postgres:15/);
    const gw = compose.services['integration-gateway'];
    const env = Object.fromEntries((gw.environment as string[]).map((e) => e.split(/=(.*)/s).slice(0, 2)));
    expect(env).toMatchObject({
      REDIS_ADDR: 'redis:6379',
      CACHE_L1_ENABLED: 'true',
      CACHE_L2_ENABLED: 'true',
      CACHE_L3_ENABLED: 'true',
      METRICS_PORT: '8081',
    });
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\//);
    expect(gw.depends_on.redis.condition).toBe('service_healthy');
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
      REDIS_ADDR: 'redis:6379',
    });
    const cfg = loadConnectorConfig(cm.data['comexstat.yaml'], { env: {} });
    expect(cfg.cache.ttlMs).toBe(168 * 3_600_000);
    expect(cfg.cache.keyPattern).toBe('comexstat:exp:{ano}:{mes}:{ncm}:{pais}');
    const shipped = loadConnectorConfig(readFileSync(path.join(root, 'config/comexstat.yaml'), 'utf8'), {
      env: {},
    });
    expect(shipped.warming.topCountries).toHaveLength(10);
  });

  it('Redis runs 512 MB allkeys-lru', () => {
    const args = find('Deployment', 'redis').spec.template.spec.containers[0].args.join(' ');
    expect(args).toContain('--maxmemory 512mb');
    expect(args).toContain('--maxmemory-policy allkeys-lru');
    expect(find('Service', 'redis').spec.ports[0].port).toBe(6379);
  });

  it('CronJobs: weekly warming and the daily 03:00 aggregates refresh', () => {
    const warm = find('CronJob', 'comexstat-warm-cache');
    expect(warm.spec.schedule.split(' ')).toHaveLength(5);
    expect(warm.spec.schedule.split(' ')[4]).toMatch(/^[0-6]$/);
    expect(warm.spec.jobTemplate.spec.template.spec.containers[0].command).toEqual(['node', 'dist/warm.js']);
    const refresh = find('CronJob', 'comexstat-refresh-aggregates');
    expect(refresh.spec.schedule).toBe('0 3 * * *');
    expect(refresh.spec.jobTemplate.spec.template.spec.containers[0].command.at(-1)).toBe(
      'refresh-aggregates',
    );
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
