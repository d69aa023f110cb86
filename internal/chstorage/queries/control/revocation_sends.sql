-- How often each lock of a revocation was sent its command, and the latest.
-- param: revocation_id String = 'rv1'
SELECT credential_id, vendor, lock_id, toUInt32(count()), max(sent_ms) FROM lock_command_sends
WHERE revocation_id = {revocation_id:String} GROUP BY credential_id, vendor, lock_id
