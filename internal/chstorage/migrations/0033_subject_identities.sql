-- Re-identification mapping: pseudonymous subject_id → the subject reference
-- an organisation knows the person by (directory / HR id, display name).
-- The event store never holds these; only admins may read them, through
-- audited routes (GET /v1/subjects/{id}/identity, the re-identified export).
-- Filled by the control plane / registry feed (or an operator) with
-- chstorage.InsertRows; a newer version replaces an older one.
-- shard: cityHash64(subject_id)
CREATE TABLE IF NOT EXISTS subject_identities (
    subject_id String,
    subject_ref String,
    display_name String,
    updated_ms Int64
) ENGINE = ReplacingMergeTree(updated_ms)
ORDER BY subject_id;
