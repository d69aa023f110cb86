-- The locks of a revocation keyfleet gave up on, with the last error.
-- param: revocation_id String = 'rv1'
SELECT credential_id, vendor, lock_id, any(error), max(attempts) FROM lock_command_outcomes
WHERE revocation_id = {revocation_id:String} AND outcome = 'gave_up' GROUP BY credential_id, vendor, lock_id
