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
  type CallOptions,
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
  type ComexStatLoaderContext,
  type ComexStatAdmissionOptions,
  type GetMonthOptions,
} from './comexstat-connector.js';
export { comexstatTags, type ComexStatTaggedCell } from './comexstat-tags.js';
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
  type SpacerPriority,
  type SpacerClock,
  type AcquireOptions,
  DEFAULT_MIN_INTERVAL_MS,
  DEFAULT_EXPECTED_REPLICAS,
  DEFAULT_SPACER_KEY,
} from './request-spacer.js';
// The connector's parts (release tracker, countries table, call batcher, shared merge, fan-out)
// are not public API: `@bgc/connector-comexstat/internal` (issue 16).
export { UpstreamBacklogError, ClientBudgetError, ConnectorClosedError } from './admission-errors.js';
export {
  warmComexStat,
  type WarmComexStatOptions,
  type WarmProgress,
  type WarmSummary,
  type WarmTopProvider,
} from './warm-comexstat.js';
export { createWarmReporter, type WarmReporter, type WarmReporterOptions } from './warm-reporter.js';
