import { packageBuild } from '../../tsup.shared.js';

export default packageBuild(['src/index.ts', 'src/internal.ts', 'src/otel.ts', 'src/testing/index.ts'], {
  // One copy of each module behind every entry: an error class or the version clock imported
  // through /internal or /testing is the root's own, so instanceof and versions agree.
  splitting: true,
});
