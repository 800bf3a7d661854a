import { packageBuild } from '../../tsup.shared.js';

// One copy of each module behind both entries.
export default packageBuild(['src/index.ts', 'src/internal.ts'], { splitting: true });
