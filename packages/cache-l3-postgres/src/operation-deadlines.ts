/** One bounded operation waiting for its result. */
interface Pending {
  deadline: number;
  reject: (error: unknown) => void;
  timeoutError: () => unknown;
}

/**
 * Bounds operations by one timeout without a timer per operation: pending operations sit in a set,
 * and one interval (running only while some are pending, never keeping the process alive) rejects
 * those past their deadline. An operation rejects between `timeoutMs` and `timeoutMs` plus one
 * tick (a tenth of the timeout, between 5 and 100 ms) after it started.
 */
export class OperationDeadlines {
  /** The tick of the checking interval, in ms. */
  readonly tickMs: number;
  private readonly pending = new Set<Pending>();
  private ticker: ReturnType<typeof setInterval> | undefined;

  /** @param timeoutMs how long an operation may take, in ms (> 0). */
  constructor(private readonly timeoutMs: number) {
    this.tickMs = Math.max(5, Math.min(100, Math.round(timeoutMs / 10)));
  }

  /** Operations currently bounded. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Settles as `work` does, or rejects with `timeoutError()` once the timeout has passed, whichever
   * comes first. A rejection (the work's or the timeout's) goes through `mapError` when given: one
   * promise layer for the bound and the caller's error mapping together.
   */
  bound<T>(
    work: Promise<T>,
    timeoutError: () => unknown,
    mapError?: (error: unknown) => unknown,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = mapError === undefined ? reject : (error: unknown) => reject(mapError(error));
      const entry: Pending = { deadline: Date.now() + this.timeoutMs, reject: fail, timeoutError };
      this.pending.add(entry);
      if (this.ticker === undefined) {
        this.ticker = setInterval(() => this.check(), this.tickMs);
        this.ticker.unref();
      }
      work.then(
        (value) => {
          this.pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.pending.delete(entry);
          fail(error);
        },
      );
    });
  }

  private check(): void {
    const now = Date.now();
    for (const entry of this.pending) {
      if (now >= entry.deadline) {
        this.pending.delete(entry);
        entry.reject(entry.timeoutError());
      }
    }
    if (this.pending.size === 0 && this.ticker !== undefined) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }
}
