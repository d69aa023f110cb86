-- Each applied lock command's first receive, apply and ack times.
-- param: ids Array(String) = ['r1', 'r2']
SELECT command_id, min(received_ms), min(applied_ms), min(acked_ms) FROM lock_acks
WHERE status = 'applied' AND has({ids:Array(String)}, revocation_id) GROUP BY command_id
