-- The moves of a vendor migration (ts bounds the scan to its partition on).
-- param: migration_id String = 'mg1'
-- param: from DateTime = '2024-03-04 05:06:07'
SELECT credential_id, state, from_vendor, from_lock, to_vendor, to_lock
FROM estate_migration_moves FINAL
WHERE migration_id = {migration_id:String} AND ts >= {from:DateTime}
