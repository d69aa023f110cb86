-- The locks told to drop a revocation's credentials.
-- param: revocation_id String = 'rv1'
SELECT credential_id, vendor, lock_id, min(issued_ms) FROM revocation_locks
WHERE revocation_id = {revocation_id:String} GROUP BY credential_id, vendor, lock_id
