import { packageBuild } from '../../tsup.shared.js';

// shims: the CJS build finds the shipped migrations/ through import.meta.url (every chunk sits in
// dist/, one level below the package root). One copy of each module behind the three entries.
export default packageBuild(['src/index.ts', 'src/internal.ts', 'src/cli.ts'], {
  shims: true,
  splitting: true,
});
