import { BgcCacheError } from './bgc-cache-error.js';

/** A tier was skipped because its circuit breaker is open. Code `E_CIRCUIT_OPEN`. */
export class CircuitOpenError extends BgcCacheError {
  constructor(tier: string, retryInMs: number) {
    super(
      'E_CIRCUIT_OPEN',
      `${tier} tier skipped: its circuit breaker is open after repeated failures; next probe in ${retryInMs} ms`,
    );
    this.name = 'CircuitOpenError';
  }
}
