export {
  ComexStatApiError,
  type ComexStatApiErrorOptions,
  type ComexStatErrorCode,
} from './comexstat-api-error.js';
export {
  ComexStatClient,
  type ComexStatClientOptions,
  type ComexStatClientStats,
  type ComexStatAttempt,
  COMEXSTAT_BASE_URL,
  DEFAULT_USER_AGENT,
} from './comexstat-client.js';
export {
  ComexStatConnector,
  type ComexStatConnectorOptions,
  type ComexStatConnectorStats,
  type ComexStatCache,
  type ComexStatMonthQuery,
  type ComexStatMonthResult,
  type ComexStatYearGroup,
} from './comexstat-connector.js';
export {
  ttlForComexStat,
  isFrozenYear,
  isPublishedMonth,
  isOutdatedByRelease,
  PAST_YEAR_TTL_MS,
  CLOSED_MONTH_TTL_MS,
  CURRENT_MONTH_TTL_MS,
} from './comexstat-ttl.js';
export type {
  ComexStatFlow,
  ComexStatLanguage,
  ComexStatMetric,
  ComexStatFilter,
  GeneralQuery,
  GeneralRow,
  ComexStatRelease,
  ComexStatCountry,
  ComexStatCountryDetail,
  ComexStatNcm,
  NcmSearch,
  ComexStatMonthRow,
  ComexStatMonthValue,
} from './comexstat-types.js';
export {
  loadConnectorConfig,
  DEFAULT_CONNECTOR_CONFIG,
  type ComexStatConnectorConfig,
  type LoadConnectorConfigOptions,
} from './connector-config.js';
export {
  RequestSpacer,
  type RequestSpacerOptions,
  type SpacerRedis,
  DEFAULT_MIN_INTERVAL_MS,
} from './request-spacer.js';
export { SingleTierCache, type SingleTierCacheOptions } from './single-tier-cache.js';
export {
  warmComexStat,
  type WarmComexStatOptions,
  type WarmProgress,
  type WarmSummary,
  type WarmTopProvider,
} from './warm-comexstat.js';
export { createWarmReporter, type WarmReporter, type WarmReporterOptions } from './warm-reporter.js';
