-- The lock commands sent about one credential: per command its lock, type,
-- seq, first issue, last send and sends.
-- param: credential_id String = 'c1'
SELECT command_id, any(vendor), any(lock_id), any(type), max(seq), min(issued_ms), max(sent_ms), max(attempt)
FROM lock_command_sends WHERE credential_id = {credential_id:String} GROUP BY command_id
