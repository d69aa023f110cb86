-- A revocation's acks per credential and lock: the first applied one, how
-- many, and the last failure's error.
-- param: revocation_id String = 'rv1'
SELECT credential_id, vendor, lock_id, minIf(applied_ms, status = 'applied'), countIf(status = 'applied'),
    argMaxIf(error, applied_ms, status = 'failed')
FROM lock_acks WHERE revocation_id = {revocation_id:String} GROUP BY credential_id, vendor, lock_id
