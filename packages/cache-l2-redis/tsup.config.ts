import { packageBuild } from '../../tsup.shared.js';

// One copy of each module behind both entries (the codec and serializers behind RedisTier are /internal's own).
export default packageBuild(['src/index.ts', 'src/internal.ts'], { splitting: true });
