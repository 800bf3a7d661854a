import type { Scenario } from '../scenario.js';
export const stampede: Scenario = { name: 'stampede', async run() { return { scenario: 'stampede', title: '', baselines: {}, results: [], targets: [], notes: [], skipped: 'todo' }; } };
