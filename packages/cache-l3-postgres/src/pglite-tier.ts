import type { PGlite } from '@electric-sql/pglite';
import { PostgresTier, type PostgresTierOptions } from './postgres-tier.js';

/** Options of {@link createPgliteTier}: the tier's options without the server connection ones. */
export interface PgliteTierOptions
  extends Omit<
    PostgresTierOptions,
    | 'db'
    | 'pool'
    | 'connectionString'
    | 'poolSize'
    | 'statementTimeoutMs'
    | 'connectionTimeoutMs'
    | 'idleTimeoutMs'
    | 'ssl'
  > {
  /** Directory the embedded database persists to; omit (or `'memory://'`) to keep it in memory. */
  dataDir?: string;
  /** An existing PGlite instance to use instead (never closed by the tier). */
  pglite?: PGlite;
  /** Apply the migrations on start-up. @default true (an embedded database has no separate migration step) */
  migrate?: boolean;
}

/**
 * Creates a {@link PostgresTier} on embedded PostgreSQL (PGlite): same schema, same drizzle code,
 * no server. Resolves once the database is open and migrated. Needs `@electric-sql/pglite`.
 *
 * ```ts
 * const l3 = await createPgliteTier({ dataDir: './.data/l3' });
 * ```
 * @throws {TierError} when the database cannot be opened or migrated.
 */
export async function createPgliteTier(options: PgliteTierOptions = {}): Promise<PostgresTier> {
  const tier = new PostgresTier({
    ...options,
    migrate: options.migrate ?? true,
    ...(options.pglite
      ? { pglite: options.pglite, dataDir: undefined }
      : { dataDir: options.dataDir ?? 'memory://' }),
  });
  try {
    await tier.init();
  } catch (error) {
    await tier.close();
    throw error;
  }
  return tier;
}
