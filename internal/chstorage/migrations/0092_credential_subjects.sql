-- Which credentials a subject holds (issue 23): credential_events is ordered
-- by (credential_id, seq), so the subject timeline's credential part read the
-- whole table. It now takes the subject's credentials from this small table
-- and reads their records by the primary key, within the time range's
-- monthly partitions. credential_events is written at the pace of
-- credential changes (not of access events), so a materialized view keeps
-- this table; back-filled from what credential_events holds.
-- shard: cityHash64(credential_id)
CREATE TABLE IF NOT EXISTS credential_subjects (
    subject_id String,
    credential_id String,
    first_ms Int64
) ENGINE = ReplacingMergeTree
ORDER BY (subject_id, credential_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS credential_subjects_mv TO credential_subjects AS
SELECT subject_id, credential_id, min(ts_ms) AS first_ms
FROM credential_events
GROUP BY subject_id, credential_id;

INSERT INTO credential_subjects (subject_id, credential_id, first_ms)
SELECT subject_id, credential_id, min(ts_ms) FROM credential_events GROUP BY subject_id, credential_id;
