-- Detector alerts (detect). One row per alert version: the detector writes
-- an alert when raised and again when its suppression window closes with
-- repeats; every status change through the API is a new version too.
-- ReplacingMergeTree(version) keeps the newest; reads use FINAL. ts (the
-- event time the alert was raised at) never changes for an alert_id, so all
-- versions share a partition and a sorting key.
-- shard: cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    version UInt64,
    detector String,
    severity String,
    subject_id String,
    credential_id String,
    door_id String,
    site_id String,
    ts DateTime,
    ts_ms Int64,
    window_start_ms Int64,
    window_end_ms Int64,
    observed Float64,
    threshold Float64,
    baseline Float64,
    evidence Array(String),
    explanation String,
    suggested_action String,
    suppressed_count UInt32,
    revision UInt32,
    rules_version Int32,
    status String,
    status_note String,
    status_by String,
    status_ms Int64,
    source_received_ms Int64,
    detected_ms Int64,
    updated_ms Int64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, alert_id);

-- What the automated responders did (or would have done, in dry-run) for an
-- alert: one row per (alert, action); a retry is a new version. reversal
-- says how a human undoes it.
-- shard: cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS alert_actions (
    action_id String,
    alert_id String,
    alert_ts DateTime,
    rule String,
    action String,
    outcome String,
    detail String,
    detector String,
    severity String,
    credential_id String,
    site_id String,
    actor String,
    reversal String,
    ts_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(alert_ts)
ORDER BY (alert_id, action_id);

-- Ticket-like records the responders open for alerts (one per alert).
-- shard: cityHash64(alert_id)
CREATE TABLE IF NOT EXISTS alert_tickets (
    ticket_id String,
    alert_id String,
    alert_ts DateTime,
    detector String,
    severity String,
    title String,
    body String,
    subject_id String,
    credential_id String,
    door_id String,
    site_id String,
    status String,
    assignee String,
    created_ms Int64,
    updated_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(alert_ts)
ORDER BY (alert_id, ticket_id);

-- Detector baselines (per-subject daily peaks and hour-of-day use counts),
-- saved periodically so a restarted detector keeps what it learned.
-- shard: cityHash64(subject_id)
CREATE TABLE IF NOT EXISTS detect_baselines (
    subject_id String,
    role String,
    state String,
    updated_ms Int64
) ENGINE = ReplacingMergeTree(updated_ms)
ORDER BY subject_id;
