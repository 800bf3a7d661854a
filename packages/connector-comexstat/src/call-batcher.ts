import { UpstreamBacklogError, ClientBudgetError, ConnectorClosedError } from './admission-errors.js';
import { ComexStatApiError } from './comexstat-api-error.js';
import type { ComexStatClient } from './comexstat-client.js';
import { isOutdatedByRelease, isPublishedMonth } from './comexstat-ttl.js';
import type {
  ComexStatFlow,
  ComexStatMonthRow,
  ComexStatMonthValue,
  ComexStatRelease,
  GeneralQuery,
} from './comexstat-types.js';
import type { CountryTable } from './country-table.js';
import { type FannedCell, fanOutRows, type SealedCall } from './fan-out.js';
import { clockTimer, PRIORITY_RANK, SYSTEM_CLOCK, type SpacerPriority } from './request-spacer.js';
import type { FlowState, PendingCell, SharedMerge } from './shared-merge.js';

/** One (flow, year, month, NCM, country) cell with its cache key. */
export interface BatchCell {
  flow: ComexStatFlow;
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
  key: string;
}

/** Admission bounds of the batcher (see the connector options for the defaults). */
export interface AdmissionLimits {
  /** Longest a query waits for its call, ms; beyond it: `UpstreamBacklogError` (the call goes on). */
  maxWaitMs: number;
  /** Most calls queued (not yet sent) at once. */
  maxPendingCalls: number;
  /** Most cells waited for at once (every client). */
  maxPendingCells: number;
  /** Most cells one client may wait for at once; `0` disables the budget. */
  clientBudget: number;
  /** Upstream time assumed for one call when estimating waits, ms. */
  callTimeMs: number;
}

/** What the batcher needs from the connector. */
export interface BatcherHost {
  client: ComexStatClient;
  countries: CountryTable;
  shared: SharedMerge | undefined;
  limits: AdmissionLimits;
  /** Wait before a new call asks for its slot, ms. */
  gatherMs: number;
  /** Longest the gathering goes on while misses keep joining, ms (a burst over many ms is one call). */
  gatherMaxMs: number;
  /** With `shared`: period of the check for waiters answered by another instance, ms. */
  sharedCheckMs: number;
  /**
   * Reads under way for at least `olderThanMs` that may still become misses (slow: through the
   * shared tiers at a cold start); a gathering call waits for a burst of them.
   */
  approaching?: (olderThanMs: number) => number;
  maxCellsPerCall: number;
  fanOut: {
    enabled: boolean;
    wholeYear: boolean;
    /** One-year fanned-out calls ask every country (no country filter). */
    allCountries: boolean;
    topNcms: readonly string[];
    topCountries: readonly string[];
  };
  release(): ComexStatRelease | undefined;
  now(): number;
  keyFor(cell: Omit<BatchCell, 'key'>): string;
  /** Reads values from the shared cache (`undefined` on a miss). */
  read(keys: string[]): Promise<(ComexStatMonthValue | undefined)[]>;
  /** Writes the cells nobody's loader stores. */
  store(
    cells: {
      key: string;
      flow: ComexStatFlow;
      ano: number;
      mes: number;
      ncm: string;
      pais: string;
      value: ComexStatMonthValue;
    }[],
  ): Promise<void>;
  /** Every row of an answer; a rejection of what it returns goes to `onError`. */
  onRows: ((rows: ComexStatMonthRow[]) => unknown) | undefined;
  onError(error: unknown): void;
  stats: {
    generalCalls: number;
    mergedMisses: number;
    keysStored: number;
    unmappedRows: number;
    backlogRefused: number;
    budgetRefused: number;
    slotsGivenUp: number;
  };
}

/** Options of one wanted cell. */
export interface WantOptions {
  /** The cache stores the answer itself (a `getOrLoad` loader); else the batch writes it. */
  loader: boolean;
  priority: SpacerPriority;
  clientId?: string;
  signal?: AbortSignal;
  /** Admission bounds apply (requests); warming and refreshes of servable entries skip the budget. */
  admit: boolean;
}

interface Waiter {
  cell: BatchCell;
  /** When it started waiting (host clock, epoch ms). */
  at: number;
  /** The batch whose call answers it (a sealed call covering its cell adopts it). */
  batch: Batch;
  loader: boolean;
  rank: number;
  clientId: string | undefined;
  settled: boolean;
  /** Rechecks of the cache done (see RECHECK_AT_MS). */
  rechecks: number;
  cancelTimer: (() => void) | undefined;
  resolve(value: ComexStatMonthValue): void;
  reject(error: unknown): void;
}

interface Batch {
  id: number;
  flow: ComexStatFlow;
  fanOut: boolean;
  /** Created by a miss (not a warming group): a one-year call may then ask every country. */
  miss: boolean;
  /** Rank of work with no waiter (warming). */
  baseRank: number;
  /** When the batch was created (host clock, epoch ms). */
  createdAt: number;
  years: Set<number>;
  months: Set<number>;
  ncms: Set<string>;
  countries: Set<string>;
  /** Cells asked for, by key (waited for, or to store: warming, timed-out waiters). */
  wanted: Map<string, BatchCell>;
  waiters: Waiter[];
  /** open: gathering; sealed: granted and sent; storing: answered, cells being written; done. */
  state: 'open' | 'sealed' | 'storing' | 'done';
  /** Expected send time, epoch ms. */
  expectedAt: number;
  sealed?: SealedCall;
  sentAt?: number;
  abort: AbortController;
  /** Settles when the call's answer (or error) is known, before its cells are written. */
  answered: Promise<void>;
  markAnswered: () => void;
  done: Promise<void>;
  /** Cells of the answer, once known. */
  results?: Map<string, FannedCell>;
  error?: unknown;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');
/**
 * Most cells written in one `store` (one `setMany`): a fanned-out answer holds tens of thousands,
 * and one write of them all would outlast a shared tier's deadline (the tier skips it and other
 * instances read misses until its recovery).
 */
const STORE_CHUNK = 100;

type StoredCell = Parameters<BatcherHost['store']>[0][number];

/**
 * A queued call's watch reads its waiters' keys while a call of its flow was stored less than this
 * before its last read, ms (the loads' own writes land shortly after the mark).
 */
const STORED_READ_MS = 3000;

/**
 * Ages (ms since it joined) at which a waiter still waiting for its call is read from the cache
 * again, whether a call of its flow was stored since or not: its cell may have been answered by
 * then through a write that lagged (another instance's load writes its own key in the background,
 * with no mark after), a write replayed by the cache's recovery (every 2 s), or it was there all
 * along and the read before the load timed out under a burst. Without it, such a waiter waited a
 * whole spacing for a call of its own.
 */
const RECHECK_AT_MS = [1000, 4000] as const;

/** Waiters answered in one turn of the event loop (see CallBatcher.answerWaiters). */
const ANSWER_CHUNK = 25;

/** While an answer is written, how often the flow is marked as stored again, ms. */
const STORED_MARK_MS = 1000;

/**
 * Slow reads under way (not yet at their loader after a quiet period; hits answer in ms) above
 * which a quiet gathering goes on: a cold burst is arriving. A few are duplicates of pending keys
 * joining their loads, not new misses.
 */
const BURST_READS = 8;

/** Quiet periods (of `gatherMs`) that end the gathering of a call others joined. */
const GATHER_LINGER = 3;

/** Abort reason of a queued call whose waiters another instance answered. */
const GIVEN_UP = Symbol('given up');

/**
 * Merges cells into as few `POST /general` calls as the row bound allows: concurrent cells of one
 * flow join one call over a range of years (period = years × a month window; with fan-out every
 * month of those years and the top lists). A call's content is fixed only when the spacer grants
 * its slot (then cells other instances wait for are added, and the slot is given up when another
 * instance answered every waiter). Admission: bounded calls and cells, a per-client budget, and a
 * wait bound past which a waiter gets `UpstreamBacklogError` while its cell stays in the call.
 */
export class CallBatcher {
  private readonly open = new Map<ComexStatFlow, Batch[]>();
  private readonly pending = new Set<Batch>();
  private readonly perClient = new Map<string, number>();
  private readonly toShare = new Map<ComexStatFlow, BatchCell[]>();
  /**
   * When a call of each flow was last sealed (here, or elsewhere as the shared marks tell; host
   * clock, epoch ms): the cells waited for then are in it.
   */
  private readonly sealedAt = new Map<ComexStatFlow, number>();
  private waitingCells = 0;
  /** When a cell last joined any batch here (performance.now()): a burst is arriving. */
  private lastJoin = Number.NEGATIVE_INFINITY;
  private nextId = 1;
  private closed = false;

  constructor(private readonly host: BatcherHost) {}

  /** Calls queued or on the wire. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  /** Cells waited for. */
  get pendingCells(): number {
    return this.waitingCells;
  }

  /** Promises of every unsettled call. */
  settling(): Promise<void>[] {
    return [...this.pending].map((b) => b.done);
  }

  /**
   * Resolves the value of one cell from the call that covers it (joining one on the wire, or
   * merged into the next call of its flow).
   * @throws {UpstreamBacklogError} the call is not expected within the wait bound, or the queue is full
   * @throws {ClientBudgetError} the client waits for too many cells already
   */
  want(cell: BatchCell, options: WantOptions): Promise<ComexStatMonthValue> {
    if (this.closed) return Promise.reject(new ConnectorClosedError());
    // A call already sent (or sealed) that covers the cell answers it.
    for (const b of this.pending) {
      if (b.flow !== cell.flow) continue;
      if (b.state === 'sealed' && covers(b.sealed, cell)) {
        this.host.stats.mergedMisses++;
        return b.answered.then(() => this.answerOf(b, cell.key));
      }
      // Answered, its cells still being written: a load (the cache stores its value) takes the
      // answer; a query without a cache asks again.
      if (b.state === 'storing' && options.loader && b.results?.has(cell.key)) {
        this.host.stats.mergedMisses++;
        return new Promise<ComexStatMonthValue>((resolve) => resolve(this.answerOf(b, cell.key)));
      }
    }
    const rank = PRIORITY_RANK[options.priority];
    const limits = this.host.limits;
    if (options.admit && limits.clientBudget > 0 && options.clientId !== undefined) {
      const used = this.perClient.get(options.clientId) ?? 0;
      if (used >= limits.clientBudget) {
        this.host.stats.budgetRefused++;
        return Promise.reject(
          new ClientBudgetError(
            `This client already waits for ${used} uncached ComexStat queries (budget ${limits.clientBudget}); retry when they are answered`,
            this.firstExpected() - this.host.now() + limits.callTimeMs,
          ),
        );
      }
    }
    if (options.admit && this.waitingCells >= limits.maxPendingCells) {
      this.host.stats.backlogRefused++;
      return Promise.reject(
        new UpstreamBacklogError(
          `${this.waitingCells} uncached ComexStat queries already wait for the upstream; retry later`,
          this.lastExpected() - this.host.now() + limits.callTimeMs,
          false,
        ),
      );
    }
    const fanOut = this.host.fanOut.enabled;
    let batch = this.openBatchFor(cell, fanOut);
    if (batch) {
      if (batch.waiters.length > 0 || batch.wanted.size > 0) this.host.stats.mergedMisses++;
    } else {
      const wait = this.host.client.spacer?.expectedWaitMs(options.priority) ?? 0;
      if (options.admit && (this.pending.size >= limits.maxPendingCalls || wait > limits.maxWaitMs)) {
        this.host.stats.backlogRefused++;
        return Promise.reject(
          new UpstreamBacklogError(
            `The upstream call for this query would leave in ${Math.round(wait / 1000)} s (${this.pending.size} calls queued, ComexStat allows one call per ${Math.round((this.host.client.spacer?.minIntervalMs ?? 0) / 1000)} s); retry later`,
            wait + limits.callTimeMs,
            false,
          ),
        );
      }
      batch = this.newBatch(cell.flow, fanOut, rank, wait, true);
    }
    this.addCell(batch, cell);
    if (this.host.shared && options.priority !== 'warming') this.share(cell);
    return new Promise<ComexStatMonthValue>((resolve, reject) => {
      const w: Waiter = {
        cell,
        at: this.host.now(),
        batch: batch as Batch,
        loader: options.loader,
        rank,
        clientId: options.admit ? options.clientId : undefined,
        settled: false,
        rechecks: 0,
        cancelTimer: undefined,
        resolve,
        reject,
      };
      this.waitingCells++;
      if (w.clientId !== undefined) this.perClient.set(w.clientId, (this.perClient.get(w.clientId) ?? 0) + 1);
      (batch as Batch).waiters.push(w);
      if (options.admit && rank === PRIORITY_RANK.user) {
        // On the spacer's clock, like the expected waits it is compared with.
        const clock = this.host.client.spacer?.clock ?? SYSTEM_CLOCK;
        w.cancelTimer = clockTimer(clock, () => this.overdue(w), limits.maxWaitMs);
      }
      const signal = options.signal;
      if (signal) {
        const onAbort = () => this.settle(w, () => reject(signal.reason));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /**
   * Adds a group of cells to be fetched and stored (warming): merged into calls of its flow like
   * misses, at the given priority; resolves the cells the calls stored.
   */
  async fetchGroup(cells: BatchCell[], priority: SpacerPriority): Promise<number> {
    if (this.closed) throw new ConnectorClosedError();
    const batches = new Set<Batch>();
    for (const cell of cells) {
      let batch = this.openBatchFor(cell, true);
      if (!batch) batch = this.newBatch(cell.flow, true, PRIORITY_RANK[priority], 0, false);
      this.addCell(batch, cell);
      batches.add(batch);
    }
    let stored = 0;
    for (const b of batches) {
      await b.done;
      if (b.error !== undefined) throw b.error;
      stored += [...(b.results?.values() ?? [])].filter((c) => c.storable).length;
    }
    return stored;
  }

  /**
   * Records a cell other instances' calls should cover: the cells of one turn of the event loop go
   * to Redis in one command per flow (a burst of misses is not one command per cell).
   */
  private share(cell: BatchCell): void {
    const shared = this.host.shared as SharedMerge;
    const list = this.toShare.get(cell.flow);
    if (list) {
      list.push(cell);
      return;
    }
    this.toShare.set(cell.flow, [cell]);
    setImmediate(() => {
      const cells = this.toShare.get(cell.flow) ?? [];
      this.toShare.delete(cell.flow);
      shared.add(cell.flow, cells).catch((e) => this.host.onError(e));
    });
  }

  /** Rejects every waiter of calls not sent yet and withdraws them from the spacer (shutdown). */
  close(): void {
    this.closed = true;
    for (const b of this.pending) {
      if (b.state !== 'open') continue;
      this.closeBatch(b);
      b.abort.abort(new ConnectorClosedError());
    }
  }

  private closeBatch(b: Batch): void {
    const list = this.open.get(b.flow);
    if (list?.includes(b)) list.splice(list.indexOf(b), 1);
  }

  private firstExpected(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const b of this.pending) t = Math.min(t, b.expectedAt);
    return Number.isFinite(t) ? t : this.host.now();
  }

  private lastExpected(): number {
    let t = this.host.now();
    for (const b of this.pending) t = Math.max(t, b.expectedAt);
    return t;
  }

  private openBatchFor(cell: BatchCell, fanOut: boolean): Batch | undefined {
    for (const b of this.open.get(cell.flow) ?? []) {
      if (b.fanOut === fanOut && this.cellsWith(b, cell) <= this.host.maxCellsPerCall) return b;
    }
    return undefined;
  }

  private newBatch(flow: ComexStatFlow, fanOut: boolean, rank: number, wait: number, miss: boolean): Batch {
    const batch: Batch = {
      id: this.nextId++,
      flow,
      fanOut,
      miss,
      baseRank: rank,
      createdAt: this.host.now(),
      years: new Set(),
      months: new Set(),
      ncms: new Set(),
      countries: new Set(),
      wanted: new Map(),
      waiters: [],
      state: 'open',
      expectedAt: this.host.now() + wait,
      abort: new AbortController(),
      answered: Promise.resolve(),
      markAnswered: () => {},
      done: Promise.resolve(),
    };
    batch.answered = new Promise<void>((r) => {
      batch.markAnswered = r;
    });
    const list = this.open.get(flow) ?? [];
    list.push(batch);
    this.open.set(flow, list);
    this.pending.add(batch);
    batch.done = this.run(batch).finally(() => this.pending.delete(batch));
    return batch;
  }

  private addCell(b: Batch, cell: BatchCell): void {
    this.lastJoin = performance.now();
    b.years.add(cell.ano);
    b.months.add(cell.mes);
    b.ncms.add(cell.ncm);
    b.countries.add(cell.pais);
    b.wanted.set(cell.key, cell);
  }

  /** Cells the batch's call would cover with `cell` added. */
  private cellsWith(b: Batch, cell: { ano: number; mes: number; ncm: string; pais: string }): number {
    const top = b.fanOut;
    const ncms = new Set([...b.ncms, cell.ncm, ...(top ? this.host.fanOut.topNcms : [])]).size;
    const countries = new Set([...b.countries, cell.pais, ...(top ? this.host.fanOut.topCountries : [])])
      .size;
    const years = [...b.years, cell.ano];
    const months = [...b.months, cell.mes];
    const window =
      b.fanOut && this.host.fanOut.wholeYear ? 12 : Math.max(...months) - Math.min(...months) + 1;
    return ncms * countries * window * (Math.max(...years) - Math.min(...years) + 1);
  }

  private rank(b: Batch): number {
    let r = b.baseRank;
    for (const w of b.waiters) if (!w.settled && w.rank < r) r = w.rank;
    return r;
  }

  /**
   * Whether the batch holds a flow's leftovers: a call of its flow was sealed within the wait
   * bound. Such batches get their slot after batches of flows with no recent call (a cold start's
   * second flow goes before the first flow's leftovers, which keep gathering meanwhile).
   */
  private leftover(b: Batch): boolean {
    const at = this.sealedAt.get(b.flow);
    return at !== undefined && this.host.now() - at < this.host.limits.maxWaitMs;
  }

  /**
   * How long the batch's oldest uncovered waiter has waited, ms: waiters older than the flow's last
   * sealed call are in that call (shared cells are drained into it), so they do not count. A
   * batch with waiters all covered is 0; one without waiters (warming) counts from its creation.
   */
  private age(b: Batch): number {
    const now = this.host.now();
    if (b.waiters.length === 0) return now - b.createdAt;
    const sealed = this.sealedAt.get(b.flow) ?? Number.NEGATIVE_INFINITY;
    let oldest = now;
    for (const w of b.waiters) if (!w.settled && w.at > sealed && w.at < oldest) oldest = w.at;
    return now - oldest;
  }

  private priority(b: Batch): SpacerPriority {
    const r = this.rank(b);
    return (Object.keys(PRIORITY_RANK) as SpacerPriority[]).find((p) => PRIORITY_RANK[p] === r) ?? 'user';
  }

  private settle(w: Waiter, fn: () => void): void {
    if (w.settled) return;
    w.settled = true;
    w.cancelTimer?.();
    this.waitingCells--;
    if (w.clientId !== undefined) {
      const n = (this.perClient.get(w.clientId) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(w.clientId);
      else this.perClient.set(w.clientId, n);
    }
    fn();
  }

  /** The wait bound passed: the waiter gets a backlog error, its cell stays in the call (stored by it). */
  private overdue(w: Waiter): void {
    const b = w.batch;
    if (w.settled || b.state === 'done') return;
    // Answered, its turn not yet come (see answerWaiters): the answer, not a backlog error.
    if (b.state === 'storing') {
      this.answerOne(b, w);
      return;
    }
    w.loader = false;
    this.host.stats.backlogRefused++;
    const left = Math.max(0, b.expectedAt - this.host.now()) + this.host.limits.callTimeMs;
    this.settle(w, () =>
      w.reject(
        new UpstreamBacklogError(
          `The ComexStat call for this query has not answered within ${Math.round(this.host.limits.maxWaitMs / 1000)} s; it goes on and the retry will be served from the cache`,
          left,
          true,
        ),
      ),
    );
  }

  private answerOf(b: Batch, key: string): ComexStatMonthValue {
    if (b.error !== undefined) throw b.error;
    const cell = b.results?.get(key);
    if (!cell) {
      throw new ComexStatApiError(
        `The ComexStat call did not cover ${key}; this is a connector bug, please report it`,
        { code: 'E_COMEXSTAT_INCOMPLETE', url: '/general', isRetryable: true },
      );
    }
    if (cell.unmapped) {
      throw new ComexStatApiError(
        `A ComexStat row for ${key} named a country the countries table does not know; the table is being refreshed, retry later`,
        { code: 'E_COMEXSTAT_UNMAPPED', url: '/general', isRetryable: true },
      );
    }
    return cell.value;
  }

  /** Whether the shared cache holds a value answering `cell` (fresh for the latest release). */
  private answered(cell: BatchCell, value: ComexStatMonthValue | undefined): boolean {
    if (value === undefined) return false;
    const release = this.host.release();
    if (!release) return value.status === 'ok';
    if (value.status === 'not_published') return !isPublishedMonth(cell.ano, cell.mes, release);
    return !isOutdatedByRelease(cell.ano, value.fetchedAt, release);
  }

  /**
   * Resolves the waiters whose values another instance's call handed over in the answers hash
   * (one round trip for all of them, not one cache read per key: see {@link SharedMerge.putAnswers});
   * resolves the waiters left. Only waiters that were waiting when that call was sent take its
   * value (their cells were drained into it; a load that began later, e.g. after an invalidation,
   * reads the cache). A failed read leaves them all to the cache read.
   */
  private async fromAnswers(b: Batch, shared: SharedMerge, live: Waiter[]): Promise<Waiter[]> {
    let values: (ComexStatMonthValue | undefined)[];
    try {
      values = await shared.getAnswers(
        b.flow,
        live.map((w) => w.cell.key),
      );
    } catch (error) {
      this.host.onError(error);
      return live;
    }
    const left: Waiter[] = [];
    const answers: [Waiter, ComexStatMonthValue][] = [];
    live.forEach((w, i) => {
      const v = values[i];
      if (w.settled) return;
      if (v !== undefined && w.at <= v.fetchedAt && this.answered(w.cell, v)) answers.push([w, v]);
      else left.push(w);
    });
    await this.resolveInTurns(answers);
    return left;
  }

  /**
   * Cross-instance merge when the slot is granted: waiters another instance's call answered
   * meanwhile are resolved from the shared cache (release-aware); `false` gives the slot up when
   * nothing is left to ask. Then the cells other instances wait for join the call, as far as its
   * size allows.
   */
  private async mergeShared(b: Batch, shared: SharedMerge): Promise<boolean> {
    const live = b.waiters.filter((w) => !w.settled);
    const orphans = [...b.wanted.values()].filter((c) => !live.some((w) => w.cell.key === c.key));
    // Read the waiters' keys only when a call of the flow was stored since the oldest began
    // waiting (at a cold start nothing was: the read of thousands of keys would only delay the call).
    let storedSince = true;
    if (live.length > 0 && orphans.length === 0) {
      try {
        const state = await shared.state(b.flow);
        const oldest = Math.min(...live.map((w) => w.at));
        storedSince =
          state.storedAgoMs !== undefined && this.host.now() - state.storedAgoMs >= oldest - STORED_READ_MS;
      } catch (error) {
        this.host.onError(error);
      }
    }
    if (live.length > 0 && orphans.length === 0 && storedSince) {
      const left = await this.fromAnswers(b, shared, live);
      if (left.length > 0) {
        const values = await this.host.read(left.map((w) => w.cell.key));
        await this.resolveInTurns(this.answeredOf(left, values));
      }
      if (b.waiters.every((w) => w.settled)) return false;
    }
    const others = await shared.drain(b.flow);
    // Other instances learn that the cells waited for until now are in a call (their batches of
    // the flow become leftovers: see leftover()).
    shared.mark(b.flow, 'sealed').catch((e) => this.host.onError(e));
    const back: PendingCell[] = [];
    for (const c of others) {
      const cell = { flow: b.flow, ...c, key: this.host.keyFor({ flow: b.flow, ...c }) };
      if (b.wanted.has(cell.key)) continue;
      if (this.cellsWith(b, cell) > this.host.maxCellsPerCall) back.push(c);
      else this.addCell(b, cell);
    }
    if (back.length > 0) await shared.add(b.flow, back);
    return true;
  }

  private async seal(b: Batch): Promise<GeneralQuery | null> {
    this.closeBatch(b);
    if (b.waiters.length > 0 && b.waiters.every((w) => w.settled) && b.wanted.size === b.waiters.length) {
      // Every waiter left (aborted): nothing to ask.
      b.state = 'done';
      return null;
    }
    if (this.host.shared) {
      try {
        if (!(await this.mergeShared(b, this.host.shared))) {
          this.host.stats.slotsGivenUp++;
          b.state = 'done';
          return null;
        }
      } catch (error) {
        this.host.onError(error);
      }
    }
    const release = this.host.release();
    const now = new Date(this.host.now());
    const years = [...b.years];
    const fromYear = Math.min(...years);
    const toYear = Math.max(...years);
    const requested = [...b.months].sort((x, y) => x - y);
    const whole = b.fanOut && this.host.fanOut.wholeYear;
    const fromMonth = whole ? 1 : (requested[0] as number);
    let toMonth = whole ? 12 : (requested[requested.length - 1] as number);
    if (whole && fromYear === toYear) {
      // One year: stop at the last month that can be published (the release's, else the calendar's).
      const last = release
        ? release.year === toYear
          ? release.month
          : 12
        : now.getUTCFullYear() === toYear
          ? now.getUTCMonth() + 1
          : 12;
      toMonth = Math.max(requested[requested.length - 1] as number, Math.min(12, last));
    }
    const ncms = new Set(b.ncms);
    const countries = new Set(b.countries);
    // A miss of one year fanned out: every country that traded the NCMs (a chart over years keeps
    // the filter for the row bound; warming stores what the job asked for).
    const allCountries = b.fanOut && b.miss && this.host.fanOut.allCountries && fromYear === toYear;
    if (b.fanOut) {
      for (const n of this.host.fanOut.topNcms) ncms.add(n);
      for (const c of this.host.fanOut.topCountries) countries.add(c);
    }
    b.sealed = {
      flow: b.flow,
      fromYear,
      toYear,
      fromMonth,
      toMonth,
      ncms: [...ncms],
      countries: [...countries],
      allCountries,
    };
    b.state = 'sealed';
    b.sentAt = this.host.now();
    this.sealedAt.set(b.flow, b.sentAt);
    this.adopt(b);
    this.host.stats.generalCalls++;
    // Years × a month window: one of the API's safe period forms (docs/comexstat-api.md §3).
    return {
      flow: b.flow,
      monthDetail: true,
      period: { from: `${fromYear}-${pad2(fromMonth)}`, to: `${toYear}-${pad2(toMonth)}` },
      filters: allCountries
        ? [{ filter: 'ncm', values: [...ncms] }]
        : [
            { filter: 'ncm', values: [...ncms] },
            { filter: 'country', values: [...countries] },
          ],
      details: ['ncm', 'country'],
      metrics: ['metricFOB', 'metricKG'],
    };
  }

  /**
   * Moves this instance's waiters whose cells the sealed call covers out of the flow's open
   * batches into it (answered with it, not after a later read of the shared cache); an open batch
   * left with nothing to ask is given up.
   */
  private adopt(b: Batch): void {
    const sealed = b.sealed as SealedCall;
    for (const x of [...(this.open.get(b.flow) ?? [])]) {
      const moved = new Set<string>();
      const kept: Waiter[] = [];
      for (const w of x.waiters) {
        if (!w.settled && covers(sealed, w.cell)) {
          w.batch = b;
          b.waiters.push(w);
          b.wanted.set(w.cell.key, w.cell);
          moved.add(w.cell.key);
        } else kept.push(w);
      }
      if (moved.size === 0) continue;
      x.waiters = kept;
      for (const key of moved) if (!kept.some((w) => w.cell.key === key)) x.wanted.delete(key);
      x.years.clear();
      x.months.clear();
      x.ncms.clear();
      x.countries.clear();
      for (const cell of x.wanted.values()) this.addCell(x, cell);
      if (x.wanted.size === 0 && kept.every((w) => w.settled)) {
        this.closeBatch(x);
        x.state = 'done';
        x.abort.abort(GIVEN_UP);
      }
    }
  }

  /**
   * While the call waits for its slot: resolves the waiters another instance's call answered (one
   * shared read per call), and gives the slot up when none is left.
   */
  private async watch(b: Batch, shared: SharedMerge): Promise<void> {
    let lastRead = Number.NEGATIVE_INFINITY;
    while (b.state === 'open' && !this.closed) {
      await new Promise<void>((r) => setTimeout(r, this.host.sharedCheckMs).unref?.());
      if (b.state !== 'open') return;
      // One small command: when a call of the flow was last sealed and stored, anywhere. The
      // waiters' keys are read only after a store (not every period: a burst's waiters are
      // thousands of keys in every tier).
      let state: FlowState;
      try {
        state = await shared.state(b.flow);
      } catch (error) {
        this.host.onError(error);
        continue;
      }
      if (b.state !== 'open') return;
      const now = this.host.now();
      if (state.sealedAgoMs !== undefined) {
        const at = now - state.sealedAgoMs;
        if (at > (this.sealedAt.get(b.flow) ?? Number.NEGATIVE_INFINITY)) this.sealedAt.set(b.flow, at);
      }
      // All the waiters after a store of the flow; else those due for a recheck (RECHECK_AT_MS).
      const stored = state.storedAgoMs !== undefined && now - state.storedAgoMs >= lastRead - STORED_READ_MS;
      const live = b.waiters.filter((w) => !w.settled);
      const recheckDue = (w: Waiter) => now - w.at >= (RECHECK_AT_MS[w.rechecks] ?? Infinity);
      const due = stored ? live : live.filter(recheckDue);
      if (due.length === 0) continue;
      if (stored) lastRead = now;
      for (const w of due) while (recheckDue(w)) w.rechecks++;
      let left: Waiter[];
      let values: (ComexStatMonthValue | undefined)[];
      try {
        left = await this.fromAnswers(b, shared, due);
        if (b.state !== 'open') return;
        values = left.length > 0 ? await this.host.read(left.map((w) => w.cell.key)) : [];
      } catch (error) {
        this.host.onError(error);
        continue;
      }
      if (b.state !== 'open') return;
      await this.resolveInTurns(this.answeredOf(left, values));
      // Settled over several turns: the slot may have been granted meanwhile.
      if (b.state !== 'open') return;
      if (b.waiters.every((w) => w.settled) && b.wanted.size === b.waiters.length) {
        this.closeBatch(b);
        b.state = 'done';
        this.host.stats.slotsGivenUp++;
        b.abort.abort(GIVEN_UP);
        return;
      }
    }
  }

  private async run(b: Batch): Promise<void> {
    // Let the callers (and other instances) add to the call before it asks for its slot.
    // A burst arriving over more than one gathering period (hundreds of requests parsed one by
    // one, misses joining in any order) keeps gathering while cells join, up to gatherMaxMs.
    // The gathering goes on while misses keep arriving, in this batch or any other (a burst's
    // first miss of a flow may be followed by its flow's next ones only after hundreds of ms of
    // other requests, each through the shared tiers first), until no cell joined for
    // GATHER_LINGER periods of gatherMs (a lone miss waits that long) or gatherMaxMs passed.
    if (this.host.gatherMs > 0) {
      const gather = this.host.gatherMs;
      const until = performance.now() + Math.max(gather, this.host.gatherMaxMs);
      const quiet = Math.min(gather * GATHER_LINGER, Math.max(gather, this.host.gatherMaxMs));
      for (;;) {
        await new Promise<void>((r) =>
          setTimeout(r, Math.max(0, Math.min(gather, until - performance.now()))),
        );
        const now = performance.now();
        if (b.state !== 'open' || now >= until) break;
        // Quiet, and not a burst's reads still under way (they may join once through the
        // shared tiers: at a cold start each takes hundreds of ms): the misses are in.
        if (now - this.lastJoin >= quiet && (this.host.approaching?.(quiet) ?? 0) <= BURST_READS) break;
      }
    } else await Promise.resolve();
    if (this.host.shared) void this.watch(b, this.host.shared);
    try {
      const rows = await this.host.client.generalWhenDue(() => this.seal(b), {
        priority: () => this.priority(b),
        leftover: () => this.leftover(b),
        age: () => this.age(b),
        signal: b.abort.signal,
      });
      if (rows === null) {
        for (const w of b.waiters) {
          // Given up with waiters left only when they all settled; any left is a bug: fail loudly.
          this.settle(w, () =>
            w.reject(
              new ComexStatApiError('The ComexStat call was given up', {
                code: 'E_COMEXSTAT_INCOMPLETE',
                url: '/general',
                isRetryable: true,
              }),
            ),
          );
        }
        return;
      }
      const sealed = b.sealed as SealedCall;
      const release = this.host.release();
      const now = new Date(this.host.now());
      const current = now.getUTCFullYear() * 12 + now.getUTCMonth();
      const { cells, unmappedRows } = fanOutRows({
        call: sealed,
        rows,
        codesByName: this.host.countries.codesByName(
          sealed.allCountries ? this.host.countries.codes() : sealed.countries,
        ),
        release,
        maybeUnpublished: (ano, mes) => ano * 12 + (mes - 1) >= current - 1,
        fetchedAt: b.sentAt as number,
        keyFor: this.host.keyFor,
      });
      b.results = cells;
      if (unmappedRows > 0) {
        this.host.stats.unmappedRows += unmappedRows;
        this.host.countries.unknownName();
      }
      if (this.host.onRows) {
        const all = [...cells.values()].flatMap((c) => c.value.rows);
        if (all.length > 0) {
          const onRows = this.host.onRows;
          Promise.resolve(all)
            .then(onRows)
            .catch((e) => this.host.onError(e));
        }
      }
      const loaderKeys = new Set(b.waiters.filter((w) => w.loader && !w.settled).map((w) => w.cell.key));
      // The cells someone waits for (other instances' drained cells, waiters past the bound, a
      // warming group) are written first: other instances' watches read them. Then the rest of
      // the answer (neighbours, negative cells), in chunks small enough for the tiers' deadline.
      const first: StoredCell[] = [];
      const rest: StoredCell[] = [];
      for (const [key, c] of cells) {
        // A load stores its own key (version-checked against invalidations during the call).
        if (!c.storable || loaderKeys.has(key)) continue;
        const item = { key, flow: b.flow, ano: c.ano, mes: c.mes, ncm: c.ncm, pais: c.pais, value: c.value };
        (b.wanted.has(key) ? first : rest).push(item);
      }
      const shared = this.host.shared;
      // Once the cells someone waits for are written, the other instances' watches read them.
      const markStored = () => shared?.mark(b.flow, 'stored').catch((e) => this.host.onError(e));
      // Marked again while a long answer is written (every STORED_MARK_MS) and once it is all
      // written: other instances' loads that joined a call of theirs after this answer (for cells
      // no one waited for when it was sealed: neighbours) read the cache again then, instead of
      // waiting for their own call (a second upstream call for cells already fetched).
      let markedAt = performance.now();
      const write = async (items: StoredCell[]) => {
        for (let i = 0; i < items.length; i += STORE_CHUNK) {
          const chunk = items.slice(i, i + STORE_CHUNK);
          try {
            await this.host.store(chunk);
            this.host.stats.keysStored += chunk.length;
          } catch (error) {
            this.host.onError(error);
          }
          if (shared && performance.now() - markedAt >= STORED_MARK_MS) {
            markedAt = performance.now();
            void markStored();
          }
        }
      };
      if (shared && first.length > 0) {
        // Other instances' waiters take their values from the answers hash (one command per 500
        // cells, read in one round trip by each instance), whatever the cache's tiers are going
        // through: under a burst their writes and reads time out and their circuits open, and a
        // waiter that found nothing in them was left to its wait bound. Then this instance's
        // waiters are answered, and the cells are written to the cache (marked again once there,
        // for waiters that read the cache: the loads that began after the call was sent).
        try {
          await shared.putAnswers(
            b.flow,
            first.map((c) => ({ key: c.key, value: c.value })),
          );
        } catch (error) {
          this.host.onError(error);
        }
        void markStored();
        this.answerWaiters(b);
        await write(first);
        void markStored();
      } else {
        // This instance's waiters are answered now, not after the writes.
        this.answerWaiters(b);
        void markStored();
        await write(first);
      }
      await write(rest);
      if (rest.length > 0) void markStored();
    } catch (error) {
      this.closeBatch(b);
      if (error !== GIVEN_UP) b.error = error;
    } finally {
      b.state = 'done';
    }
    this.answerWaiters(b);
  }

  /**
   * Settles every waiter left with its cell's value (or the call's error): ANSWER_CHUNK at once,
   * the next ones after the event loop's next turn. A burst's call answers thousands of waiters,
   * and each answer runs its request to its response in the same microtask checkpoint: all at
   * once, that stalled the instance for hundreds of ms (its Redis replies read after their
   * command timeout, hits queued behind).
   */
  private answerWaiters(b: Batch): void {
    // Answered: later loads of its cells take the answer while they are written; then done.
    b.state = b.state === 'sealed' && b.results !== undefined ? 'storing' : 'done';
    b.markAnswered();
    const left = b.waiters.filter((w) => !w.settled);
    const answer = (from: number): void => {
      const end = Math.min(left.length, from + ANSWER_CHUNK);
      for (let i = from; i < end; i++) this.answerOne(b, left[i] as Waiter);
      if (end < left.length) setImmediate(() => answer(end));
    };
    answer(0);
  }

  /** The waiters whose read value answers their cell, with it. */
  private answeredOf(
    waiters: readonly Waiter[],
    values: readonly (ComexStatMonthValue | undefined)[],
  ): [Waiter, ComexStatMonthValue][] {
    const out: [Waiter, ComexStatMonthValue][] = [];
    waiters.forEach((w, i) => {
      const v = values[i];
      if (this.answered(w.cell, v)) out.push([w, v as ComexStatMonthValue]);
    });
    return out;
  }

  /**
   * Settles waiters with their values, ANSWER_CHUNK per turn of the event loop (as
   * {@link CallBatcher.answerWaiters}); resolves once all are settled.
   */
  private async resolveInTurns(answers: readonly [Waiter, ComexStatMonthValue][]): Promise<void> {
    for (let i = 0; i < answers.length; i += ANSWER_CHUNK) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r));
      const end = Math.min(answers.length, i + ANSWER_CHUNK);
      for (let j = i; j < end; j++) {
        const [w, v] = answers[j] as [Waiter, ComexStatMonthValue];
        this.settle(w, () => w.resolve(v));
      }
    }
  }

  /** Settles one waiter with its cell's value (or the call's error); a no-op once settled. */
  private answerOne(b: Batch, w: Waiter): void {
    if (w.settled) return;
    let value: ComexStatMonthValue;
    try {
      value = this.answerOf(b, w.cell.key);
    } catch (error) {
      this.settle(w, () => w.reject(error));
      return;
    }
    this.settle(w, () => w.resolve(value));
  }
}

function covers(s: SealedCall | undefined, c: BatchCell): boolean {
  return (
    s !== undefined &&
    c.ano >= s.fromYear &&
    c.ano <= s.toYear &&
    c.mes >= s.fromMonth &&
    c.mes <= s.toMonth &&
    s.ncms.includes(c.ncm) &&
    s.countries.includes(c.pais)
  );
}
