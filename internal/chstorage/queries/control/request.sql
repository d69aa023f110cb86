-- A stored provisioning request.
-- param: request_id String = 'rq1'
SELECT request_id, kind, idempotency_key, body_sha256, caller, created_ms, total, rejected, response
FROM control_requests WHERE request_id = {request_id:String} LIMIT 1
