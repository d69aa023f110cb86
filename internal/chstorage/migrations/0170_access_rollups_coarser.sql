-- Coarser summary rollups (issue 23): access_rollup_hourly keyed every hour
-- by site, vendor, action, outcome, method and reason: method (7 values) and
-- reason (4 per denial) split a site's hour into ~46 keys, so the table held
-- about one row per 3 events (0.37 rows per event with the subject rollup)
-- and every fleet-wide week read a large share of it. Two tables replace it:
--
-- access_rollup_site_hourly: per hour by site, vendor, action and outcome
-- (what hourly charts split and filter by; ~7 keys per site and hour);
-- access_rollup_daily: per day by all six dimensions (method and reason
-- splits, day and whole-range buckets).
--
-- Both are recomputed exactly like 0034's rollups (uniqExact(event_id) over
-- whole units marked dirty, one version per run). The job records its own
-- watermark (access_rollup_state name access_rollups_0170), so an instance of
-- an older version still rolling up access_rollup_hourly cannot vouch for the
-- new tables. Back-fill: every hour of the stored events is marked dirty
-- again (idempotent, like 0034's first marks); the job's first run after this
-- migration recomputes them into the new tables, and until then summaries
-- read those hours from the events (exact, slower). access_rollup_hourly is
-- no longer written or read and keeps its rows until retention drops them.
-- shard: key_hash
CREATE TABLE IF NOT EXISTS access_rollup_site_hourly (
    ts DateTime,
    hour_ms Int64,
    key_hash UInt64,
    site_id String,
    vendor String,
    action String,
    outcome String,
    events UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, hour_ms, key_hash);

-- shard: key_hash
CREATE TABLE IF NOT EXISTS access_rollup_daily (
    ts DateTime,
    day_ms Int64,
    key_hash UInt64,
    site_id String,
    vendor String,
    action String,
    outcome String,
    method String,
    reason String,
    events UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, day_ms, key_hash);

INSERT INTO access_rollup_dirty (hour_ms, marked)
SELECT intDiv(ts_ms, 3600000) * 3600000 AS h, now()
FROM access_events
GROUP BY h;
