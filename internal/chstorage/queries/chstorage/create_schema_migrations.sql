-- The table Migrate records applied migrations in (created before the first).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32, name String, applied_at DateTime
) ENGINE = MergeTree ORDER BY version
