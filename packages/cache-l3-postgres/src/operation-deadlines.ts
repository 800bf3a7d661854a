/** One bounded operation waiting for its result: a node of the pending list, in deadline order. */
interface Pending {
  deadline: number;
  /** Cleared when the operation leaves the list (settled or timed out). */
  reject: ((error: unknown) => void) | undefined;
  timeoutError: (() => unknown) | undefined;
  prev: Pending | undefined;
  next: Pending | undefined;
}

/**
 * Bounds operations by one timeout without a timer per operation: pending operations sit in a
 * list, and one interval (running only while some are pending, never keeping the process alive)
 * rejects those past their deadline. An operation rejects between `timeoutMs` and `timeoutMs` plus
 * one tick (a tenth of the timeout, between 5 and 100 ms) after it started.
 *
 * Every operation has the same timeout, so appending keeps the list in deadline order: the check
 * stops at the first operation not yet due, and a settled operation unlinks itself in O(1). A
 * doubly linked list rather than a `Set`: under load (pg getMany at c=16) adding and deleting
 * `Set` entries kept each operation's promise chain, result rows included, alive past several
 * scavenges (promoted, then freed by mark-compacts: ~9 MB promoted per scavenge, scavenges of
 * 10-40 ms instead of ~1 ms); unlinked nodes drop their references at once.
 */
export class OperationDeadlines {
  /** The tick of the checking interval, in ms. */
  readonly tickMs: number;
  private head: Pending | undefined;
  private tail: Pending | undefined;
  private count = 0;
  private ticker: ReturnType<typeof setInterval> | undefined;

  /** @param timeoutMs how long an operation may take, in ms (> 0). */
  constructor(private readonly timeoutMs: number) {
    this.tickMs = Math.max(5, Math.min(100, Math.round(timeoutMs / 10)));
  }

  /** Operations currently bounded. */
  get size(): number {
    return this.count;
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
      const entry: Pending = {
        deadline: Date.now() + this.timeoutMs,
        reject: fail,
        timeoutError,
        prev: this.tail,
        next: undefined,
      };
      if (this.tail === undefined) this.head = entry;
      else this.tail.next = entry;
      this.tail = entry;
      this.count++;
      if (this.ticker === undefined) {
        this.ticker = setInterval(() => this.check(), this.tickMs);
        this.ticker.unref();
      }
      work.then(
        (value) => {
          this.unlink(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.unlink(entry);
          fail(error);
        },
      );
    });
  }

  /** Takes `entry` out of the list (once: a settled or timed-out entry has no `reject` left). */
  private unlink(entry: Pending): void {
    if (entry.reject === undefined) return;
    const { prev, next } = entry;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    entry.prev = undefined;
    entry.next = undefined;
    entry.reject = undefined;
    entry.timeoutError = undefined;
    this.count--;
  }

  private check(): void {
    const now = Date.now();
    let entry = this.head;
    while (entry !== undefined && now >= entry.deadline) {
      const reject = entry.reject as (error: unknown) => void;
      const timeoutError = entry.timeoutError as () => unknown;
      this.unlink(entry);
      reject(timeoutError());
      entry = this.head;
    }
    if (this.count === 0 && this.ticker !== undefined) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }
}
