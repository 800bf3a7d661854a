-- The key/value table of the L3 tier. Times are epoch milliseconds (bigint), like CacheEntry.
-- `key` holds the cache key, or `sha256:<hex>` of it when the key is longer than 512 bytes;
-- then `full_key` keeps the original so that reads can check it.
CREATE TABLE IF NOT EXISTS bgc_cache_entries (
  key text PRIMARY KEY,
  full_key text,
  value jsonb NOT NULL,
  fresh_until bigint NOT NULL,
  stale_until bigint NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  meta jsonb
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS bgc_cache_entries_stale_until_idx ON bgc_cache_entries (stale_until);
