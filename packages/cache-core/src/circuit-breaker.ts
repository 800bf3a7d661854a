import type { CircuitState } from './metrics.js';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. @default 3 */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe is let through, in ms. @default 5000 */
  cooldownMs?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
  /** Called on every state change. */
  onStateChange?: (state: CircuitState) => void;
}

/**
 * A consecutive-failure circuit breaker. Closed: every call goes through. Open: calls are refused
 * until the cool-down ends. Half-open: one probe goes through; its success closes the circuit, its
 * failure opens it again for another cool-down.
 */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange: ((state: CircuitState) => void) | undefined;
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private current: CircuitState = 'closed';

  constructor(options: CircuitBreakerOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? 3);
    this.cooldownMs = Math.max(0, options.cooldownMs ?? 5000);
    this.now = options.now ?? Date.now;
    this.onStateChange = options.onStateChange;
  }

  /** The current state (an open circuit past its cool-down reads as half-open). */
  get state(): CircuitState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) return 'half_open';
    return this.current;
  }

  /** Milliseconds until the next probe is allowed (0 when calls may go through). */
  retryInMs(): number {
    return this.current === 'open' ? Math.max(0, this.cooldownMs - (this.now() - this.openedAt)) : 0;
  }

  /** Whether a call may go through now. In half-open state only one probe at a time is allowed. */
  allow(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.probing) return false;
    this.probing = true;
    this.transition('half_open');
    return true;
  }

  /** Records a successful call. */
  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.current !== 'closed') this.transition('closed');
  }

  /** Records a failed call. */
  failure(): void {
    this.failures++;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || this.current === 'half_open' || this.failures >= this.threshold) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  private transition(state: CircuitState): void {
    if (this.current === state) return;
    this.current = state;
    this.onStateChange?.(state);
  }
}
