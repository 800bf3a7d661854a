import type { Scenario } from '../scenario.js';
export const l1L2Get: Scenario = { name: 'l1-l2-get', async run() { return { scenario: 'l1-l2-get', title: '', baselines: {}, results: [], targets: [], notes: [], skipped: 'todo' }; } };
