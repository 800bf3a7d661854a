// The connector's parts, for tests and tools that take it apart: not public API, no stability
// promise (`@bgc/connector-comexstat/internal`). The root export is the public API.
export { PRIORITY_RANK, SYSTEM_CLOCK, clockTimer } from './request-spacer.js';
export { ReleaseTracker, type ReleaseTrackerOptions } from './release-tracker.js';
export {
  CountryTable,
  type CountryTableOptions,
  COUNTRIES_REFRESH_MS,
  normalizeName,
} from './country-table.js';
export { COUNTRIES_SNAPSHOT } from './countries-snapshot.js';
export {
  fanOutRows,
  type FanOutInput,
  type FanOutResult,
  type FannedCell,
  type SealedCall,
} from './fan-out.js';
export { SharedMerge, type PendingCell, PENDING_TTL_MS } from './shared-merge.js';
export {
  CallBatcher,
  type AdmissionLimits,
  type BatchCell,
  type BatcherHost,
  type WantOptions,
} from './call-batcher.js';
