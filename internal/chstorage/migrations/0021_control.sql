-- Control-plane requests: one row per provisioning request (single or bulk),
-- with the hashed Idempotency-Key, the body digest and the first response,
-- so a retry with the same key answers the same and a different body is a 422.
-- shard: cityHash64(request_id)
CREATE TABLE IF NOT EXISTS control_requests (
    request_id String,
    kind String,
    idempotency_key String,
    body_sha256 String,
    caller String,
    ts DateTime,
    created_ms Int64,
    total UInt32,
    rejected UInt32,
    response String
) ENGINE = ReplacingMergeTree
ORDER BY request_id;

-- Status of each item of a request: pending, issued, applied or failed (with
-- why). The API writes pending (and failed for rows it refused); the owner of
-- the credential writes the outcome. The highest version wins.
-- shard: cityHash64(request_id)
CREATE TABLE IF NOT EXISTS control_request_items (
    request_id String,
    item UInt32,
    credential_id String,
    status String,
    error String,
    detail String,
    updated_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (request_id, item);

-- Revocation requests as the API accepted them (a credential, a subject's
-- credentials, or an expiry), with the credentials they cover.
-- shard: cityHash64(revocation_id)
CREATE TABLE IF NOT EXISTS revocation_requests (
    revocation_id String,
    scope String,
    subject_id String,
    credential_ids Array(String),
    ts DateTime,
    requested_ms Int64,
    actor String,
    reason String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY revocation_id;

-- One row per revoked credential: when the entitlement record and the device
-- session were disabled and how many locks were told.
-- shard: cityHash64(revocation_id)
CREATE TABLE IF NOT EXISTS revocations (
    revocation_id String,
    credential_id String,
    subject_id String,
    scope String,
    ts DateTime,
    requested_ms Int64,
    disabled_ms Int64,
    session_revoked_ms Int64,
    device_id String,
    locks_total UInt32
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (revocation_id, credential_id);

-- One row per lock command of a revocation: the locks that must acknowledge.
-- shard: cityHash64(revocation_id)
CREATE TABLE IF NOT EXISTS revocation_locks (
    revocation_id String,
    credential_id String,
    vendor String,
    lock_id String,
    command_id String,
    ts DateTime,
    issued_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (revocation_id, credential_id, vendor, lock_id);

-- Every lock acknowledgement (lock.acks). Revocation latency is the last
-- applied ack of a revoked credential minus the request time.
-- shard: cityHash64(command_id)
CREATE TABLE IF NOT EXISTS lock_acks (
    command_id String,
    revocation_id String,
    type String,
    vendor String,
    lock_id String,
    credential_id String,
    status String,
    error String,
    ts DateTime,
    received_ms Int64,
    applied_ms Int64,
    acked_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (command_id, status);

-- Role templates (JSON), highest version wins. Built-in defaults apply to a
-- role until it is changed here.
-- shard: cityHash64(role)
CREATE TABLE IF NOT EXISTS control_templates (
    role String,
    version UInt64,
    template String,
    updated_ms Int64,
    updated_by String
) ENGINE = ReplacingMergeTree(version)
ORDER BY role;

-- Post-event review of break-glass credentials (the queue is every
-- break-glass credential without a closed review).
-- shard: cityHash64(credential_id)
CREATE TABLE IF NOT EXISTS breakglass_reviews (
    credential_id String,
    status String,
    outcome String,
    reviewer String,
    note String,
    updated_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY credential_id;
