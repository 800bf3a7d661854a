export { startGateway, createLogger, type Gateway, type StartGatewayOptions } from './gateway.js';
export { loadGatewayConfig, redactUrl, type GatewayConfig } from './config.js';
export {
  createApp,
  safeEqual,
  type AppOptions,
  type MonthAnswer,
  type MonthFetcher,
  type MonthQuery,
  type Phase,
} from './server.js';
export { createRuntime, ENDPOINTS, type GatewayRuntime } from './runtime.js';
export { createMetricsServer } from './metrics-server.js';
