-- Tags of an entry (issue 16): JSON text of its tag list, NULL when it has none. The orchestrator
-- treats a tagged entry older than a tag's invalidation record as deleted (deleteByTag) or stale
-- (expireByTag); the records themselves are ordinary rows under keys opened by U+0001.
ALTER TABLE bgc_cache_entries ADD COLUMN IF NOT EXISTS tags text;
