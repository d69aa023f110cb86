-- Exact, dedup-safe pre-aggregates for summaries (GET /v1/events/summary).
--
-- A SummingMergeTree fed by a materialized view would count a re-delivered
-- event twice. Instead, a materialized view only marks which hours an insert
-- touched (access_rollup_dirty: hour, server time of the insert), and the
-- rollup job recomputes those hours from access_events with
-- uniqExact(event_id) into ReplacingMergeTree rollups (a newer version of a
-- key replaces the older). The job records how far it got in
-- access_rollup_state; a summary reads the rollups for hours not marked since
-- then and access_events for the rest (marked hours, partial edge hours), so
-- it is exact at query time whatever the job's lag.
--
-- Each run recomputes whole hours (days) and writes all of a unit's keys with
-- one version; until a merge replaces the older rows, readers keep a unit's
-- rows of its highest version ((unit, version) IN (... max(version) ...)),
-- which is cheaper than FINAL on 18.16. key_hash identifies a rollup key for
-- the replacing merge.
-- shard: hour_ms
CREATE TABLE IF NOT EXISTS access_rollup_dirty (
    hour_ms Int64,
    marked DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(marked)
ORDER BY (marked, hour_ms);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_rollup_dirty_mv TO access_rollup_dirty AS
SELECT intDiv(ts_ms, 3600000) * 3600000 AS hour_ms, now() AS marked
FROM access_events
GROUP BY hour_ms;

-- shard: key_hash
CREATE TABLE IF NOT EXISTS access_rollup_hourly (
    ts DateTime,
    hour_ms Int64,
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
ORDER BY (hour_ms, key_hash);

-- shard: key_hash
CREATE TABLE IF NOT EXISTS access_rollup_subject_daily (
    ts DateTime,
    day_ms Int64,
    key_hash UInt64,
    outcome String,
    action String,
    site_id String,
    subject_id String,
    events UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (outcome, day_ms, key_hash);

-- shard: cityHash64(name)
CREATE TABLE IF NOT EXISTS access_rollup_state (
    name String,
    watermark DateTime,
    updated_ms Int64
) ENGINE = ReplacingMergeTree(updated_ms)
ORDER BY name;

-- Hours already in access_events need a first roll-up.
INSERT INTO access_rollup_dirty (hour_ms, marked)
SELECT intDiv(ts_ms, 3600000) * 3600000 AS h, now()
FROM access_events
GROUP BY h;
