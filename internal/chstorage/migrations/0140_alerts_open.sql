-- The open alerts (issue 23): one row per open alert, kept current by the
-- alert store beside every write of alerts (an alert opened writes +1, one
-- acknowledged or resolved writes -1 with the same key; a change of an open
-- alert's detector or severity writes both). CollapsingMergeTree merges the
-- pairs away, so the table holds about as many rows as there are open
-- alerts, not as many as were ever raised. Readers sum sign per alert (rows
-- not merged yet) and check every listed alert against its current row in
-- alerts. Partitioned like alerts, so retention drops the same months.
-- Back-filled from the open alerts stored before it: a repeated back-fill
-- only raises the sum, which readers and the next write of the alert set
-- right (the store writes the difference to what it wants).
-- shard: cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS alerts_open (
    site_id String,
    alert_id String,
    ts DateTime,
    ts_ms Int64,
    detector String,
    severity String,
    version UInt64,
    sign Int8
) ENGINE = CollapsingMergeTree(sign)
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, alert_id);

INSERT INTO alerts_open (site_id, alert_id, ts, ts_ms, detector, severity, version, sign)
SELECT site_id, alert_id, ts, ts_ms, detector, severity, version, 1 FROM alerts FINAL WHERE status = 'open';
