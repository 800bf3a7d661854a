import type { Scenario } from '../scenario.js';
export const gatewayHttp: Scenario = { name: 'gateway-http', async run() { return { scenario: 'gateway-http', title: '', baselines: {}, results: [], targets: [], notes: [], skipped: 'todo' }; } };
