-- A vendor migration as requested, with its plan (JSON).
-- param: migration_id String = 'mg1'
-- param: from_vendor String = 'seam'
-- param: to_vendor String = 'nuki'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: requested_ms Int64 = 1709528767123
-- param: actor String = 'admin'
-- param: reason String = 'contract ends'
-- param: locks UInt32 = 2
-- param: credentials UInt32 = 3
-- param: plan String = '{"new_locks":[]}'
INSERT INTO estate_migrations (migration_id, from_vendor, to_vendor, ts, requested_ms, actor, reason, locks, credentials, plan)
VALUES ({migration_id:String}, {from_vendor:String}, {to_vendor:String}, {ts:DateTime}, {requested_ms:Int64}, {actor:String},
    {reason:String}, {locks:UInt32}, {credentials:UInt32}, {plan:String})
