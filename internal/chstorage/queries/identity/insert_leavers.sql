-- A leaver and the revocation identity sync made for it.
-- param: subject_id String = 's1'
-- param: change_ms Int64 = 1709528767000
-- param: reason String = 'deactivated'
-- param: revocation_id String = 'r1'
-- param: credentials UInt32 = 1
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: requested_ms Int64 = 1709528768000
INSERT INTO identity_leavers (subject_id, change_ms, reason, revocation_id, credentials, ts, requested_ms)
VALUES ({subject_id:String}, {change_ms:Int64}, {reason:String}, {revocation_id:String}, {credentials:UInt32},
    {ts:DateTime}, {requested_ms:Int64})
