import type { Scenario } from '../scenario.js';
export const l1Hitrate: Scenario = { name: 'l1-hitrate', async run() { return { scenario: 'l1-hitrate', title: '', baselines: {}, results: [], targets: [], notes: [], skipped: 'todo' }; } };
