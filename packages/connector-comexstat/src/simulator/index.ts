export {
  startComexStatSimulator,
  type ComexStatSimulator,
  type ComexStatSimulatorOptions,
  type SimulatorRateLimitOptions,
  type SimulatorLatencyOptions,
  type SimulatorFault,
  type SimulatorFaultType,
  type SimulatorFaults,
  type SimulatorStats,
} from './comexstat-simulator.js';
export { SIM_COUNTRIES, SIM_NCMS, SIM_UFS, type SimCountry, type SimNcm } from './simulator-data.js';
export { generateCell, isPublished, unitHash, type SimCell, type SimRelease } from './simulator-generate.js';
