-- A lock's records in the lock registry's history, newest first.
-- param: vendor String = 'nuki'
-- param: lock_id String = 'l1'
-- param: limit UInt64 = 50
SELECT record FROM lock_registry FINAL
WHERE vendor = {vendor:String} AND lock_id = {lock_id:String}
ORDER BY version DESC LIMIT {limit:UInt64}
