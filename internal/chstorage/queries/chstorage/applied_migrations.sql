-- The migration versions a database has applied.
SELECT DISTINCT version FROM schema_migrations
