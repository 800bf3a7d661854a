// The core's Tier conformance suite against KeyvTier over two real Keyv stores that run without a
// server: SQLite (@keyv/sqlite, a file in a temp directory) and Keyv's in-memory Map.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTierConformance } from '@bgc/cache-core/testing';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { KeyvTier } from '../src/index.js';

/** What KeyvTier implements of the coherence contract (all of it; see its docs for the cross-process caveat). */
const CAPABILITIES = { versions: true, tombstones: true, expire: true, values: 'codec', tags: true } as const;

const dir = mkdtempSync(join(tmpdir(), 'bgc-keyv-tier-'));
const uri = `sqlite://${join(dir, 'cache.sqlite')}`;

runTierConformance(
  'KeyvTier over @keyv/sqlite',
  () => new KeyvTier({ keyv: new Keyv({ store: new KeyvSqlite(uri), namespace: 'conf' }), ownsKeyv: true }),
  { ...CAPABILITIES, teardown: () => rmSync(dir, { recursive: true, force: true }) },
);

const map = new Map();
runTierConformance(
  'KeyvTier over a Map',
  () => new KeyvTier({ keyv: new Keyv({ store: map }) }),
  CAPABILITIES,
);
