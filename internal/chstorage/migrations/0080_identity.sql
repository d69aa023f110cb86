-- Identity sync (identity/store): the SCIM resources identity providers and
-- HR feeds push. identity_resources is the only table holding personal data
-- (user names, real names, e-mail addresses); every other table and topic
-- carries pseudonymous subject ids.
--
-- One row per version of a resource; the highest version is the resource
-- (a delete is a tombstone version with deleted = 1 and an empty doc). Only
-- the identity owner (the consumer of identity.writes) inserts here, so
-- versions and unique keys are decided in one place.
-- shard: cityHash64(type, id)
CREATE TABLE IF NOT EXISTS identity_resources (
    type String,
    id String,
    version UInt64,
    deleted UInt8,
    created_ms Int64,
    modified_ms Int64,
    subject_id String,
    user_name String,
    external_id String,
    display_name String,
    members Array(String),
    doc String,
    token String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (type, id);

-- Writes waiting for the owner's decision: the API instance that received
-- a SCIM request stages the new version here (token = the write's id), then
-- publishes a write intent (ids and versions only) on identity.writes. The
-- owner copies accepted rows into identity_resources. Daily partitions,
-- dropped after two days by the owner.
-- shard: cityHash64(token)
CREATE TABLE IF NOT EXISTS identity_staged (
    token String,
    ts DateTime,
    type String,
    id String,
    version UInt64,
    deleted UInt8,
    created_ms Int64,
    modified_ms Int64,
    subject_id String,
    user_name String,
    external_id String,
    display_name String,
    members Array(String),
    doc String
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY token;

-- The owner's decision on each write: applied, not_found, version,
-- conflict (detail: the key), exists, expired. Daily partitions, dropped
-- after two days.
-- shard: cityHash64(token)
CREATE TABLE IF NOT EXISTS identity_decisions (
    token String,
    ts DateTime,
    outcome String,
    detail String,
    decided_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY token;
