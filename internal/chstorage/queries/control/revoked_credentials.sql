-- A revocation's revoked credentials (the entitlement layer).
-- param: revocation_id String = 'rv1'
SELECT credential_id, min(requested_ms), max(disabled_ms), max(locks_total), any(scope)
FROM revocations WHERE revocation_id = {revocation_id:String} GROUP BY credential_id
