/** Injection token of the application's MultiLevelCache. */
export const BGC_CACHE = Symbol('BGC_CACHE');
/** Injection token of the simulated upstream API. */
export const UPSTREAM = Symbol('UPSTREAM');
