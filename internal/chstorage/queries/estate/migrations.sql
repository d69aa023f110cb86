-- Vendor migrations, newest first, or one by id.
-- param: migration_id String = 'mg1'
-- param: limit UInt64 = 100
SELECT migration_id, from_vendor, to_vendor, requested_ms, actor, reason, locks, credentials
FROM estate_migrations FINAL
/*if migration_id*/ WHERE migration_id = {migration_id:String} /*end*/
ORDER BY requested_ms DESC LIMIT {limit:UInt64}
