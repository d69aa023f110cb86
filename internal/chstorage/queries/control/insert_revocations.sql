-- A revoked credential (the entitlement layer; session_revoked_ms stays 0:
-- the session layer is revocation_sessions).
-- param: revocation_id String = 'rv1'
-- param: credential_id String = 'c1'
-- param: subject_id String = 's1'
-- param: scope String = 'subject'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: requested_ms Int64 = 1709528767123
-- param: disabled_ms Int64 = 1709528767123
-- param: session_revoked_ms Int64 = 1709528767123
-- param: device_id String = 'd1'
-- param: locks_total UInt32 = 1
INSERT INTO revocations (revocation_id, credential_id, subject_id, scope, ts, requested_ms, disabled_ms,
    session_revoked_ms, device_id, locks_total)
VALUES ({revocation_id:String}, {credential_id:String}, {subject_id:String}, {scope:String}, {ts:DateTime},
    {requested_ms:Int64}, {disabled_ms:Int64}, {session_revoked_ms:Int64}, {device_id:String}, {locks_total:UInt32})
