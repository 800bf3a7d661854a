/**
 * Where a PostgreSQL URL points, for messages: `host:port/database` with the user, never the
 * password or query parameters. Text that is not a URL is shown as `(an unparsable DATABASE_URL)`.
 */
export function describeDatabase(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${user}${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname || '/'}`;
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}

/**
 * Removes from `text` every form of the URL's password (as written, percent-decoded, and the whole
 * URL), and any `password=` parameter, so that driver messages can be shown safely.
 */
export function redactSecrets(text: string, connectionString: string): string {
  const secrets = new Set<string>([connectionString]);
  try {
    const url = new URL(connectionString);
    if (url.password) {
      secrets.add(url.password);
      try {
        secrets.add(decodeURIComponent(url.password));
      } catch {
        // A malformed escape: the raw form is already listed.
      }
    }
    for (const [name, value] of url.searchParams)
      if (/pass|secret|key/i.test(name) && value) secrets.add(value);
  } catch {
    // Not a URL: only the whole string is a secret.
  }
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out.replace(/(password=)[^&\s]+/gi, '$1***');
}
