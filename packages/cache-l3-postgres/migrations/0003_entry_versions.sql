-- Coherence (versions, tombstones, a cleared-at marker) and a value column that keeps what was stored.
--
-- value: jsonb -> text. The tier stores the text of the core's value codec (Date, Map, Set, BigInt,
-- undefined... as tags); jsonb would reorder object keys and cost a parse on every write and an
-- output conversion on every read. A NULL value is a tombstone: a delete that carried a version,
-- kept until stale_until so that a slower write of an older version cannot bring the key back.
-- encoding: 0 = plain JSON (rows converted from jsonb by this migration), 1 = the core's value codec.
ALTER TABLE bgc_cache_entries ALTER COLUMN value DROP NOT NULL;
--> statement-breakpoint
ALTER TABLE bgc_cache_entries ALTER COLUMN value TYPE text USING value::text;
--> statement-breakpoint
ALTER TABLE bgc_cache_entries ALTER COLUMN meta TYPE text USING meta::text;
--> statement-breakpoint
ALTER TABLE bgc_cache_entries ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
--> statement-breakpoint
ALTER TABLE bgc_cache_entries ADD COLUMN IF NOT EXISTS ttl_ms bigint;
--> statement-breakpoint
ALTER TABLE bgc_cache_entries ADD COLUMN IF NOT EXISTS encoding smallint NOT NULL DEFAULT 0;
--> statement-breakpoint
-- One row per schema: the version of the last clear(). A versioned write older than it is refused.
CREATE TABLE IF NOT EXISTS bgc_cache_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  cleared_version bigint NOT NULL DEFAULT 0
);
--> statement-breakpoint
INSERT INTO bgc_cache_state (id, cleared_version) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;
