import { BgcCacheError } from '@bgc/cache-core';

/**
 * Too many uncached queries are waiting for the ComexStat API: this one's call is not expected
 * within the connector's wait bound (or the pending-call / pending-cell bound is reached). Code
 * `E_UPSTREAM_BACKLOG`. Map it to HTTP 503 with `Retry-After: ceil(retryAfterMs / 1000)`. When the
 * cell was admitted before the bound ran out (`queued: true`), its call goes on and stores it, so
 * the retry is a hit.
 */
export class UpstreamBacklogError extends BgcCacheError {
  /** When to retry, ms from now (the expected time of the call that answers the query). */
  readonly retryAfterMs: number;
  /** Whether the cell stays queued (its call goes on and fills the cache). */
  readonly queued: boolean;
  constructor(message: string, retryAfterMs: number, queued: boolean) {
    super('E_UPSTREAM_BACKLOG', message);
    this.name = 'UpstreamBacklogError';
    this.retryAfterMs = Math.max(1000, Math.ceil(retryAfterMs));
    this.queued = queued;
  }
}

/**
 * One client (IP) has too many uncached queries waiting for the upstream. Code `E_CLIENT_BUDGET`.
 * Map it to HTTP 429 with `Retry-After: ceil(retryAfterMs / 1000)`.
 */
export class ClientBudgetError extends BgcCacheError {
  /** When to retry, ms from now (when this client's oldest pending call is expected to answer). */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('E_CLIENT_BUDGET', message);
    this.name = 'ClientBudgetError';
    this.retryAfterMs = Math.max(1000, Math.ceil(retryAfterMs));
  }
}

/**
 * The connector is closing: the query's upstream call had not been sent and never will be. Code
 * `E_SHUTTING_DOWN`. Map it to HTTP 503 (another instance answers the retry).
 */
export class ConnectorClosedError extends BgcCacheError {
  constructor(
    message = 'The ComexStat connector is shutting down; the query was not sent upstream, retry on another instance',
  ) {
    super('E_SHUTTING_DOWN', message);
    this.name = 'ConnectorClosedError';
  }
}
