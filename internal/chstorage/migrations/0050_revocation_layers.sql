-- Every send of a lock command on lock.commands: the first (attempt 1) and
-- each re-send of a command no lock acknowledged yet, with the command's
-- JSON, so an owner that restarts (or takes over a partition) re-sends the
-- same command id. ts is the first send's time, shared by every attempt.
-- shard: cityHash64(command_id)
CREATE TABLE IF NOT EXISTS lock_command_sends (
    command_id String,
    attempt UInt32,
    type String,
    vendor String,
    lock_id String,
    credential_id String,
    revocation_id String,
    seq UInt64,
    acl_version String,
    issued_ms Int64,
    sent_ms Int64,
    ts DateTime,
    command String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (command_id, attempt);

-- Lock commands keyfleet stopped re-sending without an applied ack: the
-- give-up (--lock-give-up) passed. A revocation lock with one is failed.
-- shard: cityHash64(command_id)
CREATE TABLE IF NOT EXISTS lock_command_outcomes (
    command_id String,
    outcome String,
    type String,
    vendor String,
    lock_id String,
    credential_id String,
    revocation_id String,
    attempts UInt32,
    error String,
    ts DateTime,
    outcome_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY command_id;

-- The device-session layer: one row per state change of each session
-- revocation (a revoked credential's wallet/app session, or the old
-- device's at a device change): pending, done, failed (error says why) or
-- not_configured. An outcome outranks pending whatever the clocks (the
-- version's high bits), the later write wins among equals.
-- shard: cityHash64(session_key)
CREATE TABLE IF NOT EXISTS revocation_sessions (
    session_key String,
    revocation_id String,
    credential_id String,
    subject_id String,
    device_id String,
    scope String,
    reason String,
    requested_ms Int64,
    status String,
    error String,
    attempts UInt32,
    done_ms Int64,
    updated_ms Int64,
    ts DateTime,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY session_key;

-- Revocations escalated past the revocation SLA with locks unconfirmed:
-- one row per revoked credential, naming the revocation_overdue alert.
-- shard: cityHash64(revocation_id)
CREATE TABLE IF NOT EXISTS revocation_escalations (
    revocation_id String,
    credential_id String,
    alert_id String,
    requested_ms Int64,
    escalated_ms Int64,
    pending_locks UInt32,
    ts DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (revocation_id, credential_id);

-- Full ACL resyncs (acl_push) sent to locks: on reconnect, or when a lock
-- reported an ACL version other than the expected one (drift).
-- shard: cityHash64(command_id)
CREATE TABLE IF NOT EXISTS acl_resyncs (
    command_id String,
    vendor String,
    lock_id String,
    reason String,
    reported_version String,
    expected_version String,
    acl_version String,
    entries UInt32,
    trigger_command_id String,
    ts DateTime,
    ts_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (lock_id, command_id);

-- Revocation drills (keyfleet drill): one row per run, with the report.
-- shard: cityHash64(run_id)
CREATE TABLE IF NOT EXISTS drill_runs (
    run_id String,
    scenario String,
    started_ms Int64,
    finished_ms Int64,
    ts DateTime,
    actor String,
    subjects UInt32,
    credentials UInt32,
    revocations UInt32,
    locks UInt32,
    confirmed UInt32,
    stragglers UInt32,
    disable_p50_ms Int64,
    disable_p99_ms Int64,
    confirm_p50_ms Int64,
    confirm_p99_ms Int64,
    session_state String,
    ticket_close_ms Int64,
    report String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY run_id;
