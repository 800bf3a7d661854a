import type { Scenario } from '../scenario.js';
import { gatewayColdStart } from './gateway-cold-start.js';
import { gatewayHttp } from './gateway-http.js';
import { keyvCacheManager } from './keyv-cache-manager.js';
import { l1GetHit } from './l1-get-hit.js';
import { l1Hitrate } from './l1-hitrate.js';
import { l1L2Get } from './l1-l2-get.js';
import { l1Set } from './l1-set.js';
import { l3Get } from './l3-get.js';
import { stampede } from './stampede.js';

/** Every scenario, in the order `pnpm bench` runs them. */
export const SCENARIOS: readonly Scenario[] = [
  l1GetHit,
  l1Set,
  l1L2Get,
  stampede,
  l3Get,
  gatewayHttp,
  l1Hitrate,
  keyvCacheManager,
  gatewayColdStart,
];
