-- Weekly fleet-health reports (dashboards/report), one row per generation:
-- report_id is the ISO week, plus "~site" for a site's report. A report
-- generated again (schedule catch-up, another instance, a manual run)
-- replaces the older one: ReplacingMergeTree(version), reads use FINAL.
-- document is the report's JSON; the other formats are rendered from it.
-- shard: cityHash64(report_id)
CREATE TABLE IF NOT EXISTS reports (
    report_id String,
    week String,
    site String,
    ts DateTime,
    generated_ms Int64,
    from_ms Int64,
    to_ms Int64,
    trigger String,
    document String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY report_id;
