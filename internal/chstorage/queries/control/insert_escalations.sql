-- A revoked credential escalated past the revocation SLA.
-- param: revocation_id String = 'rv1'
-- param: credential_id String = 'c1'
-- param: alert_id String = 'a1'
-- param: requested_ms Int64 = 1709528767123
-- param: escalated_ms Int64 = 1709529667123
-- param: pending_locks UInt32 = 2
-- param: ts DateTime = '2024-03-04 05:06:07'
INSERT INTO revocation_escalations (revocation_id, credential_id, alert_id, requested_ms, escalated_ms, pending_locks, ts)
VALUES ({revocation_id:String}, {credential_id:String}, {alert_id:String}, {requested_ms:Int64}, {escalated_ms:Int64},
    {pending_locks:UInt32}, {ts:DateTime})
