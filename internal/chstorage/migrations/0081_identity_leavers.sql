-- Leavers whose credentials identity sync revoked (identity/jml): when the
-- identity change happened (deactivation, deletion, or the end date itself)
-- and the revocation it caused. The leaver KPI joins it with revocations
-- and lock_acks: latency = last lock confirmation − change. Pseudonymous.
-- shard: cityHash64(subject_id)
CREATE TABLE IF NOT EXISTS identity_leavers (
    subject_id String,
    change_ms Int64,
    reason String,
    revocation_id String,
    credentials UInt32,
    ts DateTime,
    requested_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (subject_id, change_ms, revocation_id);
