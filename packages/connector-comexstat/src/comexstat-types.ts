/** Trade direction. */
export type ComexStatFlow = 'export' | 'import';

/** Languages the API localizes descriptions in. */
export type ComexStatLanguage = 'pt' | 'en' | 'es';

/** Metric names of `POST /general`. */
export type ComexStatMetric =
  | 'metricFOB'
  | 'metricKG'
  | 'metricStatistic'
  | 'metricFreight'
  | 'metricInsurance'
  | 'metricCIF';

/** One filter of `POST /general`: values are OR'ed, filters are AND'ed. Send zero-padded strings. */
export interface ComexStatFilter {
  filter: string;
  values: string[];
}

/** Body of `POST /general` (docs/comexstat-api.md §3). */
export interface GeneralQuery {
  flow: ComexStatFlow;
  /** `true` adds `monthNumber` to each row; `false` gives one row per year. */
  monthDetail: boolean;
  /** `YYYY-MM`; the months apply to every year of the range (years × month window). */
  period: { from: string; to: string };
  filters: ComexStatFilter[];
  details: string[];
  metrics: ComexStatMetric[];
}

/** A row of `POST /general`: every value is a string, as the API sends it. */
export type GeneralRow = Readonly<Record<string, string>>;

/** `GET /general/dates/updated`, parsed. */
export interface ComexStatRelease {
  /** Publication date `YYYY-MM-DD`. */
  updated: string;
  /** Publication time, epoch ms (UTC midnight of `updated`). */
  updatedAt: number;
  /** Year of the latest published month. */
  year: number;
  /** Latest published month, 1-12. */
  month: number;
}

/** A row of `GET /tables/countries`. `text` is trimmed (the API sends some with a leading space). */
export interface ComexStatCountry {
  /** 3-digit MDIC code. */
  id: string;
  text: string;
}

/** `GET /tables/countries/{id}`. */
export interface ComexStatCountryDetail {
  id: string;
  country: string;
  coPaisIson3?: string;
  coPaisIsoa3?: string;
}

/** A row of `GET /tables/ncm`. */
export interface ComexStatNcm {
  coNcm: string;
  noNCM: string;
  unit: string;
  [extra: string]: string;
}

/** Query of `GET /tables/ncm`. */
export interface NcmSearch {
  search?: string;
  /** 1-based. */
  page?: number;
  perPage?: number;
  /** Adds classification columns. */
  add?: 'sh' | 'cuci' | 'cgce';
}

/** One (flow, year, month, NCM, country) cell as the connector caches it. */
export interface ComexStatMonthRow {
  flow: ComexStatFlow;
  ano: number;
  mes: number;
  /** 8-digit NCM. */
  ncm: string;
  /** 3-digit MDIC country code. */
  pais: string;
  /** FOB value, US$. */
  fob: number;
  /** Net weight, kg (may be 0 while FOB > 0). */
  kg: number;
}

/**
 * What the connector stores under one key. `rows: []` with status `ok` means "no trade"
 * (negative caching); `not_published` means the month was not released yet when fetched.
 */
export interface ComexStatMonthValue {
  status: 'ok' | 'not_published';
  rows: ComexStatMonthRow[];
  /** When the upstream answered, epoch ms (release-aware freshness compares it to the release date). */
  fetchedAt: number;
}
