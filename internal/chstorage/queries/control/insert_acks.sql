-- A lock's acknowledgement of a command (lock.acks).
-- param: command_id String = 'cmd1'
-- param: revocation_id String = 'rv1'
-- param: type String = 'revoke'
-- param: vendor String = 'matter'
-- param: lock_id String = 'm-lobby'
-- param: credential_id String = 'c1'
-- param: status String = 'applied'
-- param: error String = ''
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: received_ms Int64 = 1709528767123
-- param: applied_ms Int64 = 1709528767123
-- param: acked_ms Int64 = 1709528767123
INSERT INTO lock_acks (command_id, revocation_id, type, vendor, lock_id, credential_id, status, error, ts,
    received_ms, applied_ms, acked_ms)
VALUES ({command_id:String}, {revocation_id:String}, {type:String}, {vendor:String}, {lock_id:String},
    {credential_id:String}, {status:String}, {error:String}, {ts:DateTime}, {received_ms:Int64}, {applied_ms:Int64},
    {acked_ms:Int64})
