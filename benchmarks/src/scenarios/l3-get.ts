import type { Scenario } from '../scenario.js';
export const l3Get: Scenario = { name: 'l3-get', async run() { return { scenario: 'l3-get', title: '', baselines: {}, results: [], targets: [], notes: [], skipped: 'todo' }; } };
