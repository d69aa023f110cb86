-- A revocation as requested.
-- param: revocation_id String = 'rv1'
SELECT scope, subject_id, credential_ids, requested_ms, actor, reason
FROM revocation_requests WHERE revocation_id = {revocation_id:String} LIMIT 1
