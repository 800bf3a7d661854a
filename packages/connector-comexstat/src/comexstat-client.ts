import sjson from 'secure-json-parse';
import { ComexStatApiError, type ComexStatErrorCode } from './comexstat-api-error.js';
import type {
  ComexStatCountry,
  ComexStatCountryDetail,
  ComexStatLanguage,
  ComexStatNcm,
  ComexStatRelease,
  GeneralQuery,
  GeneralRow,
  NcmSearch,
} from './comexstat-types.js';
import { type AcquireOptions, RequestSpacer } from './request-spacer.js';

/** The real API. */
const CANCELLED = Symbol('cancelled');

export const COMEXSTAT_BASE_URL = 'https://api-comexstat.mdic.gov.br';

/** A browser-like User-Agent: the API's Cloudflare front challenges obvious bots (docs/comexstat-api.md §1). */
export const DEFAULT_USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 bgc-cache-comexstat/0.1';

/** One HTTP attempt, reported to {@link ComexStatClientOptions.onAttempt}. */
export interface ComexStatAttempt {
  url: string;
  /** 1-based attempt number for this call. */
  attempt: number;
  /** When the request was sent, epoch ms. */
  sentAt: number;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** The failure, when the attempt failed. */
  error?: ComexStatApiError;
}

/** Options of {@link ComexStatClient}. */
export interface ComexStatClientOptions {
  /** @default 'https://api-comexstat.mdic.gov.br' */
  baseUrl?: string;
  /** Per attempt, covering the response body, ms. @default 60000 */
  timeoutMs?: number;
  /** Retries after the first attempt, for retryable failures only. @default 4 */
  retries?: number;
  /** `language` query parameter. @default 'pt' */
  language?: ComexStatLanguage;
  /** @default a browser-like User-Agent ({@link DEFAULT_USER_AGENT}) */
  userAgent?: string;
  /**
   * The fetch implementation. Pass undici's `fetch` bound to an `Agent` with your CA bundle when
   * the ICP-Brasil chain does not verify. @default globalThis.fetch
   */
  fetch?: typeof fetch;
  /**
   * Spaces every attempt (retries included). `false` disables spacing (tests, proxies that space
   * for you). @default a new RequestSpacer() (COMEXSTAT_MIN_INTERVAL_MS or 20 s)
   */
  spacer?: RequestSpacer | false;
  /** Base of the exponential backoff, ms: attempt n waits random(0, base × 2^n). @default 2000 */
  retryBaseDelayMs?: number;
  /**
   * Cap of the backoff waits, ms. A wait the API announces (a 429 message, a `Retry-After` header)
   * is honoured in full even beyond it, up to {@link ComexStatClientOptions.maxAnnouncedDelayMs}.
   * @default 60000
   */
  maxRetryDelayMs?: number;
  /**
   * Longest announced wait honoured, ms; beyond it the call fails at once with the 429 (its
   * `retryAfterMs` tells when to come back) rather than holding a slot for longer. @default 600000
   */
  maxAnnouncedDelayMs?: number;
  /** Source of randomness for the jitter, in [0, 1). @default Math.random */
  random?: () => number;
  /** Observes each HTTP attempt (logging, tests). Must not throw. */
  onAttempt?: (attempt: ComexStatAttempt) => void;
}

/** Counters of a client. */
export interface ComexStatClientStats {
  /** HTTP attempts sent. */
  requests: number;
  /** Attempts that were retries. */
  retries: number;
  /** Calls that failed for good. */
  failures: number;
  /** HTTP attempts per kind: `data` (`POST /general`), `dates`, `countries`, `other` tables. */
  byKind: { data: number; dates: number; countries: number; other: number };
}

/** Options of one client call. */
export interface CallOptions extends AcquireOptions {}

interface Envelope {
  data?: unknown;
  success?: boolean;
  message?: string | null;
  error?: { code?: number; message?: string };
}

const RATE_LIMIT_WAIT = /tente novamente em (\d+(?:[.,]\d+)?) segundos?/i;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A call built longer than this after its grant books the interval again from its send, ms. */
const REBOOK_AFTER_MS = 100;

/**
 * Typed client of the ComexStat API (`POST /general`, dates and tables), over fetch. Every HTTP
 * attempt waits for the {@link RequestSpacer}; retryable failures (429, Cloudflare 403 pages, 5xx,
 * `success:false`, malformed bodies, network errors and timeouts) are retried with exponential
 * backoff and full jitter, honouring the wait a 429 message announces; other 4xx fail at once.
 * Failures reject with {@link ComexStatApiError}.
 */
export class ComexStatClient {
  /** Base URL without trailing slash. */
  readonly baseUrl: string;
  /** The spacer every attempt waits for (`undefined` when disabled). */
  readonly spacer: RequestSpacer | undefined;
  /** Counters since construction. */
  readonly stats: ComexStatClientStats = {
    requests: 0,
    retries: 0,
    failures: 0,
    byKind: { data: 0, dates: 0, countries: 0, other: 0 },
  };
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly language: ComexStatLanguage;
  private readonly userAgent: string;
  private readonly fetchImpl: typeof fetch;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAnnouncedMs: number;
  private readonly random: () => number;
  private readonly onAttempt: ((attempt: ComexStatAttempt) => void) | undefined;

  constructor(options: ComexStatClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? COMEXSTAT_BASE_URL).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.retries = options.retries ?? 4;
    this.language = options.language ?? 'pt';
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.spacer = options.spacer === false ? undefined : (options.spacer ?? new RequestSpacer());
    this.baseDelayMs = options.retryBaseDelayMs ?? 2000;
    this.maxDelayMs = options.maxRetryDelayMs ?? 60_000;
    this.maxAnnouncedMs = options.maxAnnouncedDelayMs ?? 600_000;
    this.random = options.random ?? Math.random;
    this.onAttempt = options.onAttempt;
  }

  /**
   * `POST /general`. Resolves the rows (`data.list`), every value a string, sorted by FOB as the API
   * sends them; an empty array when nothing matches.
   *
   * `query` may be a function: it is called once, when the spacer grants the first attempt's slot,
   * so a batcher can keep adding requests to a call until the moment it leaves.
   */
  async general(
    query: GeneralQuery | (() => GeneralQuery),
    options: CallOptions = {},
  ): Promise<GeneralRow[]> {
    const data = await this.call('POST', '/general', {}, query, options);
    const list = (data as { list?: unknown } | null)?.list;
    if (!Array.isArray(list)) throw this.malformed('/general', 'data.list is missing or not an array');
    return list as GeneralRow[];
  }

  /**
   * `POST /general` with the query built only once the spacer grants the slot, so that it can
   * include what arrived meanwhile; the builder may return `null` to give the slot up (nothing
   * left to ask), and then no request is sent and `null` is returned.
   */
  async generalWhenDue(
    build: () => Promise<GeneralQuery | null>,
    options: CallOptions = {},
  ): Promise<GeneralRow[] | null> {
    const data = await this.call('POST', '/general', {}, build, options);
    if (data === CANCELLED) return null;
    const list = (data as { list?: unknown } | null)?.list;
    if (!Array.isArray(list)) throw this.malformed('/general', 'data.list is missing or not an array');
    return list as GeneralRow[];
  }

  /** `GET /general/dates/updated`: the latest release and the last published month. */
  async datesUpdated(options: CallOptions = {}): Promise<ComexStatRelease> {
    const data = (await this.call('GET', '/general/dates/updated', {}, undefined, options)) as Record<
      string,
      unknown
    > | null;
    const updated = String(data?.updated ?? '');
    const year = Number(data?.year);
    const month = Number(data?.monthNumber);
    // The API publishes during the Brasília working day at an unknown hour: data fetched any time
    // on the release day may predate it, so the release counts from the end of that day (UTC-3).
    const updatedAt = Date.parse(`${updated}T23:59:59.999-03:00`);
    if (!Number.isInteger(year) || !(month >= 1 && month <= 12) || Number.isNaN(updatedAt)) {
      throw this.malformed('/general/dates/updated', `unexpected data ${JSON.stringify(data).slice(0, 200)}`);
    }
    return { updated, updatedAt, year, month };
  }

  /** `GET /tables/countries`: every partner (≈281 rows), names trimmed. */
  async countries(search?: string, options: CallOptions = {}): Promise<ComexStatCountry[]> {
    const data = (await this.call(
      'GET',
      '/tables/countries',
      search ? { search } : {},
      undefined,
      options,
    )) as {
      list?: unknown;
    } | null;
    if (!Array.isArray(data?.list)) throw this.malformed('/tables/countries', 'data.list is missing');
    return (data.list as { id: unknown; text: unknown }[]).map((c) => ({
      id: String(c.id),
      text: String(c.text).trim(),
    }));
  }

  /** `GET /tables/countries/{id}`. Resolves `undefined` for an unknown id. */
  async country(id: string): Promise<ComexStatCountryDetail | undefined> {
    const data = await this.call('GET', `/tables/countries/${encodeURIComponent(id)}`);
    return (data ?? undefined) as ComexStatCountryDetail | undefined;
  }

  /** `GET /tables/ncm`: a page of NCMs and the total count matching `search`. */
  async ncms(search: NcmSearch = {}): Promise<{ list: ComexStatNcm[]; count: number }> {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(search)) if (v !== undefined) params[k] = String(v);
    const data = (await this.call('GET', '/tables/ncm', params)) as {
      list?: unknown;
      count?: unknown;
    } | null;
    if (!Array.isArray(data?.list)) throw this.malformed('/tables/ncm', 'data.list is missing');
    return { list: data.list as ComexStatNcm[], count: Number(data.count ?? data.list.length) };
  }

  /** `GET /tables/ncm/{coNcm}`. Resolves `undefined` for an unknown code. */
  async ncm(coNcm: string): Promise<{ id: string; text: string } | undefined> {
    const data = await this.call('GET', `/tables/ncm/${encodeURIComponent(coNcm)}`);
    return Array.isArray(data) ? (data[0] as { id: string; text: string } | undefined) : undefined;
  }

  /** `GET /tables/uf`: the states (a bare array). */
  async states(): Promise<{ id: string; uf: string; text: string }[]> {
    const data = await this.call('GET', '/tables/uf');
    if (!Array.isArray(data)) throw this.malformed('/tables/uf', 'data is not an array');
    return data as { id: string; uf: string; text: string }[];
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    params: Record<string, string> = {},
    body?: unknown | (() => unknown),
    options: CallOptions = {},
  ): Promise<unknown> {
    // Data rows are read in Portuguese whatever the configured language: their country names are
    // mapped to codes through /tables/countries, which only speaks Portuguese (docs/comexstat-api.md §1).
    const language = path === '/general' ? 'pt' : this.language;
    const qs = new URLSearchParams({ ...params, language });
    const kind =
      path === '/general'
        ? 'data'
        : path === '/general/dates/updated'
          ? 'dates'
          : path === '/tables/countries'
            ? 'countries'
            : 'other';
    const url = `${this.baseUrl}${path}?${qs}`;
    let payload: string | undefined;
    let last: ComexStatApiError | undefined;
    for (let attempt = 1; attempt <= this.retries + 1; attempt++) {
      if (attempt > 1) {
        this.stats.retries++;
        const delay = this.delayFor(attempt - 1, last);
        // A 429 refuses the whole IP: hold every queued call back, not only this retry.
        if (last?.code === 'E_COMEXSTAT_RATE_LIMITED' && this.spacer) await this.spacer.defer(delay);
        else await sleep(delay);
      }
      const sentAt = this.spacer ? await this.spacer.acquire(options) : Date.now();
      if (body !== undefined && payload === undefined) {
        const built = typeof body === 'function' ? await (body as () => unknown)() : body;
        if (built === null) return CANCELLED;
        payload = JSON.stringify(built);
      }
      // The slot was booked at the grant: a build that took a while (a busy event loop, slow
      // shared reads) would send this call closer than the interval to the next grant. Book the
      // interval again from the actual send (cluster-wide with Redis).
      if (this.spacer && this.spacer.clock.now() - sentAt > REBOOK_AFTER_MS)
        await this.spacer.defer(this.spacer.minIntervalMs);
      this.stats.requests++;
      this.stats.byKind[kind]++;
      try {
        const data = await this.attempt(method, url, payload);
        this.onAttempt?.({ url, attempt, sentAt, status: 200 });
        return data;
      } catch (error) {
        const e = error as ComexStatApiError;
        this.onAttempt?.({ url, attempt, sentAt, status: e.status, error: e });
        last = e;
        if (!e.isRetryable) break;
        // An announced wait beyond what we accept to hold: fail now, the error says when to return.
        if (e.retryAfterMs !== undefined && e.retryAfterMs > this.maxAnnouncedMs) {
          if (this.spacer) await this.spacer.defer(e.retryAfterMs);
          break;
        }
      }
    }
    this.stats.failures++;
    throw last as ComexStatApiError;
  }

  private delayFor(retry: number, error: ComexStatApiError | undefined): number {
    const jitter = this.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (retry - 1));
    // An announced wait is honoured in full (a shorter retry only earns another 429).
    if (error?.retryAfterMs !== undefined) return error.retryAfterMs + this.random() * this.baseDelayMs;
    return Math.min(this.maxDelayMs, jitter);
  }

  private async attempt(method: string, url: string, payload: string | undefined): Promise<unknown> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let status: number | undefined;
    let text: string;
    let contentType: string;
    let retryAfter: string | null = null;
    try {
      const res = await this.fetchImpl(url, {
        method,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': this.userAgent,
          'accept-language': 'pt-BR,pt;q=0.9,en;q=0.8',
        },
        body: payload,
        signal: controller.signal,
      });
      status = res.status;
      contentType = res.headers.get('content-type') ?? '';
      retryAfter = res.headers.get('retry-after');
      const bytes = new Uint8Array(await res.arrayBuffer());
      // The API is UTF-8 whatever the headers say (docs/comexstat-api.md §1).
      text = new TextDecoder('utf-8').decode(bytes);
    } catch (cause) {
      const timedOut = controller.signal.aborted;
      throw new ComexStatApiError(
        timedOut
          ? `ComexStat did not answer ${url} within ${this.timeoutMs} ms; raise timeoutMs or narrow the query`
          : `ComexStat request to ${url} failed before a response arrived (${(cause as Error)?.message ?? cause}); check connectivity`,
        {
          code: timedOut ? 'E_COMEXSTAT_TIMEOUT' : 'E_COMEXSTAT_NETWORK',
          url,
          status,
          isRetryable: true,
          cause,
        },
      );
    } finally {
      clearTimeout(timer);
    }
    return this.interpret(url, status, contentType, text, parseRetryAfter(retryAfter));
  }

  private interpret(
    url: string,
    status: number,
    contentType: string,
    text: string,
    headerWaitMs: number | undefined,
  ): unknown {
    const isJson = /json/i.test(contentType);
    const parsed = isJson ? safeParse(text) : undefined;
    const env = (parsed?.value ?? undefined) as Envelope | undefined;
    const apiMessage = env?.error?.message ?? (typeof env?.message === 'string' ? env.message : undefined);
    const fail = (code: ComexStatErrorCode, message: string, isRetryable: boolean, retryAfterMs?: number) =>
      new ComexStatApiError(message, { code, url, status, body: text, isRetryable, retryAfterMs });

    const rateWait = apiMessage ? RATE_LIMIT_WAIT.exec(apiMessage) : null;
    if (status === 429 || (rateWait && /limite/i.test(apiMessage ?? ''))) {
      const announced = rateWait ? Math.round(Number(rateWait[1]?.replace(',', '.')) * 1000) : undefined;
      const retryAfterMs =
        announced === undefined && headerWaitMs === undefined
          ? undefined
          : Math.max(announced ?? 0, headerWaitMs ?? 0);
      return this.throwing(
        fail(
          'E_COMEXSTAT_RATE_LIMITED',
          `ComexStat rate limit hit on ${url} (${apiMessage ?? 'HTTP 429'}); space calls further apart (COMEXSTAT_MIN_INTERVAL_MS)`,
          true,
          retryAfterMs,
        ),
      );
    }
    if (status === 403 && (!isJson || /<html|just a moment|cloudflare/i.test(text.slice(0, 2000)))) {
      return this.throwing(
        fail(
          'E_COMEXSTAT_CHALLENGE',
          `ComexStat answered ${url} with a Cloudflare challenge page (403); retrying later usually passes, keep a browser-like userAgent`,
          true,
        ),
      );
    }
    if (status >= 400) {
      const retryable = status === 408 || status === 409 || status >= 500;
      return this.throwing(
        fail(
          status === 400 ? 'E_COMEXSTAT_BAD_REQUEST' : 'E_COMEXSTAT_HTTP',
          `ComexStat answered ${url} with HTTP ${status}${apiMessage ? ` (${apiMessage})` : ''}${
            retryable ? '' : '; the request is invalid, fix it rather than retrying'
          }`,
          retryable,
          retryable ? headerWaitMs : undefined,
        ),
      );
    }
    if (!isJson) {
      return this.throwing(
        fail(
          'E_COMEXSTAT_MALFORMED',
          `ComexStat answered ${url} with ${contentType || 'no content type'}, not JSON`,
          true,
        ),
      );
    }
    if (!parsed || parsed.error) {
      const poisoned = parsed?.error !== undefined && /prototype|forbidden/i.test(parsed.error);
      return this.throwing(
        fail(
          'E_COMEXSTAT_MALFORMED',
          poisoned
            ? `ComexStat body from ${url} holds a __proto__/constructor key; refused for safety`
            : `ComexStat body from ${url} is not valid JSON (truncated?): ${parsed?.error ?? 'empty'}`,
          !poisoned,
        ),
      );
    }
    if (env?.success !== true) {
      return this.throwing(
        fail(
          'E_COMEXSTAT_UNSUCCESSFUL',
          `ComexStat answered ${url} with success:false${apiMessage ? ` (${apiMessage})` : ''}; usually transient`,
          true,
        ),
      );
    }
    return env.data ?? null;
  }

  private throwing(error: ComexStatApiError): never {
    throw error;
  }

  private malformed(path: string, what: string): ComexStatApiError {
    return new ComexStatApiError(`ComexStat ${path} answered an unexpected shape: ${what}`, {
      code: 'E_COMEXSTAT_MALFORMED',
      url: `${this.baseUrl}${path}`,
      isRetryable: false,
    });
  }
}

/** A `Retry-After` header (seconds, or an HTTP date) as ms from now; `undefined` when absent or invalid. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function safeParse(text: string): { value?: unknown; error?: string } {
  try {
    return { value: sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
