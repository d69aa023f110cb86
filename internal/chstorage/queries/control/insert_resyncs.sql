-- A full ACL resync (acl_push) sent to a lock, and why.
-- param: command_id String = 'cmd1'
-- param: vendor String = 'nuki'
-- param: lock_id String = 'n1'
-- param: reason String = 'drift'
-- param: reported_version String = 'aa'
-- param: expected_version String = 'bb'
-- param: acl_version String = 'bb'
-- param: entries UInt32 = 12
-- param: trigger_command_id String = 'cmd0'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
INSERT INTO acl_resyncs (command_id, vendor, lock_id, reason, reported_version, expected_version, acl_version, entries,
    trigger_command_id, ts, ts_ms)
VALUES ({command_id:String}, {vendor:String}, {lock_id:String}, {reason:String}, {reported_version:String},
    {expected_version:String}, {acl_version:String}, {entries:UInt32}, {trigger_command_id:String}, {ts:DateTime},
    {ts_ms:Int64})
