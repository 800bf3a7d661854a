/**
 * Cooperative time slicing of answered misses, process-wide (one event loop).
 *
 * Node goes on with every caller whose promise settled in one I/O callback in one microtask
 * checkpoint: a reply or a message that answers a thousand waiting misses runs a thousand requests
 * to their responses before the event loop reads the next request, and a hit that arrives meanwhile
 * waits behind all of them. Each answered miss passes through {@link nextSlice}. While the current
 * turn of the event loop has spent less than the budget, and fewer than {@link SYNC_PER_TURN}
 * callers went on at once in it, a caller goes on at once (a burst of cheap misses, e.g. 64
 * concurrent loads answered by one pipelined reply, costs nothing more). Past either, callers wait
 * in line (FIFO), and each goes on in an immediate of its own while the turn has spent less than
 * the budget, so that its work (which runs in the microtask checkpoint after that immediate) counts
 * before the next one is let go. Past the budget the line waits for the next turn, with the I/O
 * (and the hits it carries) read in between. Callers that come while others wait go behind them,
 * so none starves; each turn lets at least one go.
 */

/**
 * Callers let go at once in one turn. Their work runs after they are all let go (in the microtask
 * checkpoint of the callback that answered them), so the time budget alone could not stop a single
 * reply that answers a thousand of them.
 */
const SYNC_PER_TURN = 64;

/** Start of the current slice (`performance.now()`), -1 when none started this turn. */
let sliceStart = -1;
/** Whether the end of the current slice is queued (an immediate: the next check phase). */
let endQueued = false;
/** Callers waiting in line for a slice. */
let waiting = 0;
/** Callers let go at once (not from the line) in the current slice. */
let atOnce = 0;

function endSlice(): void {
  endQueued = false;
  sliceStart = -1;
  atOnce = 0;
}

/** Whether the current slice has budget left; the first claim of a turn starts one and always succeeds. */
function claim(budgetMs: number): boolean {
  const now = performance.now();
  if (sliceStart < 0) {
    sliceStart = now;
    if (!endQueued) {
      endQueued = true;
      setImmediate(endSlice);
    }
    return true;
  }
  return now - sliceStart < budgetMs;
}

/**
 * `undefined` when the caller may go on now (nobody in line, the turn within its budget and its
 * count of callers let go at once), else a promise that resolves when its slice comes: in this
 * turn's check phase while the budget lasts, or in a later turn. `budgetMs <= 0` turns slicing off.
 */
export function nextSlice(budgetMs: number): Promise<void> | undefined {
  if (budgetMs <= 0) return undefined;
  if (waiting === 0 && atOnce < SYNC_PER_TURN && claim(budgetMs)) {
    atOnce++;
    return undefined;
  }
  waiting++;
  return new Promise<void>((resolve) => {
    const run = (): void => {
      if (claim(budgetMs)) {
        waiting--;
        resolve();
      } else setImmediate(run);
    };
    setImmediate(run);
  });
}

/** Callers waiting in line (tests, diagnostics). */
export function slicesWaiting(): number {
  return waiting;
}
