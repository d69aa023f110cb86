-- A revocation as requested: the credentials it covers, who asked and why.
-- param: revocation_id String = 'rv1'
-- param: scope String = 'subject'
-- param: subject_id String = 's1'
-- param: credential_ids Array(String) = ['a', 'b']
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: requested_ms Int64 = 1709528767123
-- param: actor String = 'mgr1'
-- param: reason String = 'move-out'
INSERT INTO revocation_requests (revocation_id, scope, subject_id, credential_ids, ts, requested_ms, actor, reason)
VALUES ({revocation_id:String}, {scope:String}, {subject_id:String}, {credential_ids:Array(String)}, {ts:DateTime},
    {requested_ms:Int64}, {actor:String}, {reason:String})
