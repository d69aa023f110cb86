-- Each keyfleet instance's own figures (issue 16), written by its ingest
-- health sampler every few seconds: the dashboards and GET /v1/health/ingest
-- sum the latest row of every live instance for the fleet's figures.
-- One row per instance survives merges (ReplacingMergeTree by ts_ms);
-- readers take argMax(…, ts_ms) per instance, so unmerged rows are harmless.
-- shard: cityHash64(instance)
CREATE TABLE IF NOT EXISTS instance_stats (
    instance String,
    ts DateTime,
    ts_ms Int64,
    started_ms Int64,
    consumed_per_s Float64,
    inserted_per_s Float64,
    dead_lettered_per_s Float64,
    consumed_total Float64,
    inserted_total Float64,
    dead_lettered_total Float64,
    insert_failures_total Float64,
    unacknowledged Float64
) ENGINE = ReplacingMergeTree(ts_ms)
ORDER BY instance
