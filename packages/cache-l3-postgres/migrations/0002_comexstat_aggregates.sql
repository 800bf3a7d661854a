-- ComexStat rows filled by the connector, one per (flow, year, month, NCM, country).
CREATE TABLE IF NOT EXISTS comexstat_rows (
  flow text NOT NULL CHECK (flow IN ('exp', 'imp')),
  year smallint NOT NULL,
  month smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
  ncm text NOT NULL,
  country_code text NOT NULL,
  fob bigint NOT NULL,
  kg bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (flow, year, month, ncm, country_code)
);
--> statement-breakpoint
-- Totals per (flow, NCM, country) over the 12 most recent months present for each flow (ComexStat
-- publishes with a delay, so "the last 12 months" means the last 12 months of data).
-- Created empty: the first refresh populates it without CONCURRENTLY, later ones use CONCURRENTLY.
CREATE MATERIALIZED VIEW IF NOT EXISTS comexstat_top_ncm_country AS
WITH latest AS (
  SELECT flow, max(year * 12 + month - 1) AS last_period
  FROM comexstat_rows
  GROUP BY flow
)
SELECT
  r.flow,
  r.ncm,
  r.country_code,
  sum(r.fob)::bigint AS fob,
  sum(r.kg)::bigint AS kg,
  (l.last_period / 12)::smallint AS last_year,
  (l.last_period % 12 + 1)::smallint AS last_month
FROM comexstat_rows r
JOIN latest l ON l.flow = r.flow
WHERE r.year * 12 + r.month - 1 > l.last_period - 12
GROUP BY r.flow, r.ncm, r.country_code, l.last_period
WITH NO DATA;
--> statement-breakpoint
-- The unique index REFRESH MATERIALIZED VIEW CONCURRENTLY requires.
CREATE UNIQUE INDEX IF NOT EXISTS comexstat_top_ncm_country_pk ON comexstat_top_ncm_country (flow, ncm, country_code);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS comexstat_top_ncm_country_fob_idx ON comexstat_top_ncm_country (flow, fob DESC);
