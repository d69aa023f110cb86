-- One state of a device-session revocation (pending, done, failed,
-- not_configured); the highest version wins.
-- param: session_key String = 'rv1/c1'
-- param: revocation_id String = 'rv1'
-- param: credential_id String = 'c1'
-- param: subject_id String = 's1'
-- param: device_id String = 'd1'
-- param: scope String = 'subject'
-- param: reason String = 'move-out'
-- param: requested_ms Int64 = 1709528767123
-- param: status String = 'done'
-- param: error String = ''
-- param: attempts UInt32 = 1
-- param: done_ms Int64 = 1709528767500
-- param: updated_ms Int64 = 1709528767500
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: version UInt64 = 562949953421312
INSERT INTO revocation_sessions (session_key, revocation_id, credential_id, subject_id, device_id, scope, reason,
    requested_ms, status, error, attempts, done_ms, updated_ms, ts, version)
VALUES ({session_key:String}, {revocation_id:String}, {credential_id:String}, {subject_id:String}, {device_id:String},
    {scope:String}, {reason:String}, {requested_ms:Int64}, {status:String}, {error:String}, {attempts:UInt32},
    {done_ms:Int64}, {updated_ms:Int64}, {ts:DateTime}, {version:UInt64})
