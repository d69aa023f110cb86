-- One send of a lock command: the first (attempt 1) or a re-send, with the
-- command's JSON so a restarted owner can send it again.
-- param: command_id String = 'cmd1'
-- param: attempt UInt32 = 1
-- param: type String = 'revoke'
-- param: vendor String = 'nuki'
-- param: lock_id String = 'n1'
-- param: credential_id String = 'c1'
-- param: revocation_id String = 'rv1'
-- param: seq UInt64 = 5
-- param: acl_version String = '0123abcd'
-- param: issued_ms Int64 = 1709528767123
-- param: sent_ms Int64 = 1709528767123
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: command String = '{}'
INSERT INTO lock_command_sends (command_id, attempt, type, vendor, lock_id, credential_id, revocation_id, seq,
    acl_version, issued_ms, sent_ms, ts, command)
VALUES ({command_id:String}, {attempt:UInt32}, {type:String}, {vendor:String}, {lock_id:String}, {credential_id:String},
    {revocation_id:String}, {seq:UInt64}, {acl_version:String}, {issued_ms:Int64}, {sent_ms:Int64}, {ts:DateTime},
    {command:String})
