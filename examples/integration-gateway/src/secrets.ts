// Keeping secrets out of everything the gateway writes: URL redaction for the values it logs on
// purpose, and a last-line scrubber that removes every configured secret from any text (log lines,
// start-up errors) whatever path it took to get there.

/** Query parameters whose values are secrets (`?password=`, `?sslpassword=`, `?token=`...). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|credential/i;

/** Environment variables that hold URLs which may carry credentials. */
export const URL_VARIABLES: readonly string[] = Object.freeze([
  'REDIS_ADDR',
  'COORD_REDIS_ADDR',
  'DATABASE_URL',
  'COMEXSTAT_BASE_URL',
  'REDIS_SENTINELS',
  'REDIS_CLUSTER_NODES',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'https_proxy',
  'http_proxy',
]);

/** Environment variables whose whole value is a secret. */
export const SECRET_VARIABLES: readonly string[] = Object.freeze([
  'REDIS_PASSWORD',
  'COORD_REDIS_PASSWORD',
  'ADMIN_TOKEN',
  'PGPASSWORD',
  'POSTGRES_PASSWORD',
  'COMEXSTAT_API_KEY',
]);

/**
 * A URL (`redis://user:pw@host`, `postgres://host/db?password=x`, a scheme-less `user:pw@host:6379`)
 * safe to log: the password and secret-looking query values become `***`. A value that does not
 * parse as a URL is reduced to its scheme and host (`redis://***@host:6379`) or `<unparseable>`:
 * the raw text is never returned when it might hold a credential.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (!url) return url;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  const candidate = hasScheme ? url : `redis://${url}`;
  try {
    const u = new URL(candidate);
    if (u.password) u.password = '***';
    // `redis://secret@host`: a lone userinfo is the password for the Redis clients (REDIS_ADDR).
    else if (u.username && /^rediss?:$/i.test(u.protocol) && !/:@/.test(candidate)) u.username = '***';
    for (const name of [...u.searchParams.keys()])
      if (SECRET_PARAM.test(name)) u.searchParams.set(name, '***');
    // The URL serializer percent-encodes what it must; the redacted parts are plain `***`.
    const out = u.toString().replace(/%2A%2A%2A/g, '***');
    if (hasScheme) return out;
    return out.replace(/^redis:\/\//, '').replace(/\/$/, '');
  } catch {
    const scheme = hasScheme ? (url.match(/^[a-z][a-z0-9+.-]*:\/\//i)?.[0] ?? '') : '';
    const at = url.lastIndexOf('@');
    if (at < 0) return hasScheme ? `${scheme}<unparseable>` : '<unparseable>';
    const host = url.slice(at + 1).split(/[/?#]/)[0] ?? '';
    return `${scheme}***@${/^[\w.[\]:-]*$/.test(host) ? host : '<unparseable>'}`;
  }
}

/** The credential parts of a URL-like value: its password (however it parses) and secret query values. */
function urlSecrets(value: string): string[] {
  const out: string[] = [];
  // Userinfo by hand: the text between `scheme://user:` (or `user:` with no scheme) and the LAST `@`,
  // so that a password holding `/`, `@` or `:` is taken whole even when URL parsing fails.
  const rest = value.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const at = rest.lastIndexOf('@');
  if (at > 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    out.push(colon >= 0 ? userinfo.slice(colon + 1) : userinfo);
    // With a path or query before the last `@`, the first `@` may end the userinfo instead.
    const first = rest.indexOf('@');
    if (first !== at) {
      const ui = rest.slice(0, first);
      const c = ui.indexOf(':');
      if (c >= 0) out.push(ui.slice(c + 1));
    }
  }
  const q = value.indexOf('?');
  if (q >= 0) {
    for (const pair of value.slice(q + 1).split(/[&#]/)) {
      const eq = pair.indexOf('=');
      if (eq > 0 && SECRET_PARAM.test(pair.slice(0, eq))) out.push(pair.slice(eq + 1));
    }
  }
  return out;
}

/**
 * Every secret the environment configures: whole-value secrets ({@link SECRET_VARIABLES}) and the
 * credentials inside URL variables ({@link URL_VARIABLES}). Values shorter than 4 characters are
 * left out (replacing them everywhere would garble the logs; such secrets are not secrets).
 */
export function collectSecrets(env: Readonly<Record<string, string | undefined>>): string[] {
  const found = new Set<string>();
  const add = (s: string | undefined) => {
    if (!s) return;
    for (const v of [s, s.trim()]) {
      if (v.length < 4) continue;
      found.add(v);
      try {
        const decoded = decodeURIComponent(v);
        if (decoded.length >= 4) found.add(decoded);
      } catch {}
      found.add(encodeURIComponent(v));
    }
  };
  for (const name of SECRET_VARIABLES) add(env[name]);
  for (const name of URL_VARIABLES) {
    const v = env[name];
    if (v) for (const s of urlSecrets(v.trim())) add(s);
  }
  // Also their JSON-escaped forms (a log line is JSON: `"` and `\` appear escaped there).
  for (const s of [...found]) found.add(JSON.stringify(s).slice(1, -1));
  // Longest first, so that a secret containing another is replaced whole.
  return [...found].sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of each secret replaced by `***`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}
