-- A narrow index of alerts by site (issue 23): one row per alert version
-- with what lists filter on, kept current by every write of the alerts
-- table (alertstore writes the index row first). The open-alerts list reads
-- it (a site's rows, or every site's narrow rows, FINAL) and then the full
-- rows of one page from alerts, bounded by their ts; the alert sink finds
-- the stored versions of a batch through it by (site_id, alert_id) instead
-- of scanning alerts. Partitioned like alerts, so retention drops the same
-- months. Back-filled from alerts (idempotent: versions collapse).
-- shard: cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS alert_index (
    site_id String,
    alert_id String,
    ts DateTime,
    ts_ms Int64,
    detector String,
    severity String,
    status String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, alert_id);

INSERT INTO alert_index (site_id, alert_id, ts, ts_ms, detector, severity, status, version)
SELECT site_id, alert_id, ts, ts_ms, detector, severity, status, version FROM alerts;
