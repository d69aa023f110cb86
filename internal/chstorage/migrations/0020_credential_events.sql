-- Credential lifecycle records (credential.events), one row per record. Each
-- record is a full snapshot of the credential after one change; seq counts a
-- credential's records. ReplacingMergeTree on (credential_id, seq) makes
-- re-delivered records harmless. The full record JSON is kept for history.
-- shard: cityHash64(credential_id)
CREATE TABLE IF NOT EXISTS credential_events (
    credential_id String,
    seq UInt64,
    ts DateTime,
    ts_ms Int64,
    op String,
    state String,
    prev_state String,
    subject_id String,
    role String,
    site_id String,
    device_id String,
    attested UInt8,
    break_glass UInt8,
    exception UInt8,
    door_groups Array(String),
    valid_from_ms Int64,
    valid_until_ms Int64,
    issuer String,
    approvers Array(String),
    approval_rule String,
    reason String,
    actor String,
    request_id String,
    command_id String,
    revocation_id String,
    requested_ms Int64,
    issued_ms Int64,
    lock_count UInt32,
    record String,
    inserted_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (credential_id, seq);
