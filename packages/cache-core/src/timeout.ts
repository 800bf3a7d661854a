import { TimeoutError } from './errors/timeout-error.js';

// One interval checks every pending deadline instead of one timer per operation: arming and
// clearing a timer costs about a microsecond, as much as the rest of an L2 hit's overhead.
const pending = new Set<Deadline>();
let ticker: ReturnType<typeof setInterval> | undefined;
const TICK_MS = 5;

function tick(): void {
  const now = Date.now();
  for (const p of pending) {
    if (p.deadline <= now) {
      pending.delete(p);
      p.fail();
    }
  }
  if (pending.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

/** A registered deadline; pass it to {@link cancelDeadline} when the operation settles first. */
export interface Deadline {
  deadline: number;
  fail: () => void;
}

/** Calls `onExpire` once `ms` have passed (checked every 5 ms), unless cancelled first. */
export function scheduleDeadline(ms: number, onExpire: () => void): Deadline {
  const entry: Deadline = { deadline: Date.now() + ms, fail: onExpire };
  pending.add(entry);
  if (!ticker) {
    ticker = setInterval(tick, TICK_MS);
    ticker.unref?.();
  }
  return entry;
}

/** Cancels a deadline from {@link scheduleDeadline}. */
export function cancelDeadline(entry: Deadline): void {
  pending.delete(entry);
}

/**
 * Resolves or rejects like `promise`, or rejects with {@link TimeoutError} once `ms` have passed
 * (checked every 5 ms, so it may fire up to 5 ms late). `what` names the operation in the error (a
 * function is only called on timeout). Never keeps the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  if (!Number.isFinite(ms) || ms <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const entry = scheduleDeadline(ms, () =>
      reject(new TimeoutError(typeof what === 'string' ? what : what(), ms)),
    );
    promise.then(
      (v) => {
        pending.delete(entry);
        resolve(v);
      },
      (e: unknown) => {
        pending.delete(entry);
        reject(e);
      },
    );
  });
}

/** A promise that resolves to `undefined` after `ms` (unref'd timer). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
  });
}
