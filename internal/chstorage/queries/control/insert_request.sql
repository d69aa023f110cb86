-- A provisioning request and its answer (what a retry with the same
-- Idempotency-Key is answered from).
-- param: request_id String = 'rq1'
-- param: kind String = 'single'
-- param: idempotency_key String = 'k1'
-- param: body_sha256 String = '00'
-- param: caller String = 'admin'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: created_ms Int64 = 1709528767123
-- param: total UInt32 = 1
-- param: rejected UInt32 = 1
-- param: response String = '{}'
INSERT INTO control_requests (request_id, kind, idempotency_key, body_sha256, caller, ts, created_ms, total, rejected,
    response)
VALUES ({request_id:String}, {kind:String}, {idempotency_key:String}, {body_sha256:String}, {caller:String},
    {ts:DateTime}, {created_ms:Int64}, {total:UInt32}, {rejected:UInt32}, {response:String})
