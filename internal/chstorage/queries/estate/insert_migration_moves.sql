-- The credentials a vendor migration moves, one row per old lock.
-- param: migration_id String = 'mg1'
-- param: credential_id String = 'c1'
-- param: from_vendor String = 'seam'
-- param: from_lock String = 'l1'
-- param: to_vendor String = 'nuki'
-- param: to_lock String = 'l2'
-- param: state String = 'active'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: requested_ms Int64 = 1709528767123
INSERT INTO estate_migration_moves (migration_id, credential_id, from_vendor, from_lock, to_vendor, to_lock, state, ts, requested_ms)
VALUES ({migration_id:String}, {credential_id:String}, {from_vendor:String}, {from_lock:String}, {to_vendor:String},
    {to_lock:String}, {state:String}, {ts:DateTime}, {requested_ms:Int64})
