-- The first applied ack of each lock command about one credential.
-- param: credential_id String = 'c1'
SELECT command_id, min(applied_ms) FROM lock_acks
WHERE credential_id = {credential_id:String} AND status = 'applied' GROUP BY command_id
