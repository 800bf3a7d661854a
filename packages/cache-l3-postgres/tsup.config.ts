import { packageBuild } from '../../tsup.shared.js';

// shims: the CJS build finds the shipped migrations/ through import.meta.url.
export default packageBuild(['src/index.ts', 'src/cli.ts'], { shims: true });
