-- A lock told to drop a revoked credential, and the command that told it.
-- param: revocation_id String = 'rv1'
-- param: credential_id String = 'c1'
-- param: vendor String = 'matter'
-- param: lock_id String = 'm-lobby'
-- param: command_id String = 'cmd1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: issued_ms Int64 = 1709528767123
INSERT INTO revocation_locks (revocation_id, credential_id, vendor, lock_id, command_id, ts, issued_ms)
VALUES ({revocation_id:String}, {credential_id:String}, {vendor:String}, {lock_id:String}, {command_id:String},
    {ts:DateTime}, {issued_ms:Int64})
