-- Every lock command sent since a time, its last send, and whether a lock
-- acknowledged it as applied or keyfleet gave up on it (the caller keeps the
-- newest per credential and lock, and of those the unacknowledged).
-- param: acks_from DateTime = '2024-03-04 04:06:07'
-- param: from DateTime = '2024-03-04 05:06:07'
SELECT command_id, argMax(command, attempt), max(attempt), max(sent_ms),
    any(vendor), any(lock_id), any(credential_id), max(seq), min(issued_ms),
    command_id IN (SELECT command_id FROM lock_acks WHERE status = 'applied' AND ts >= {acks_from:DateTime}) AS acked,
    command_id IN (SELECT command_id FROM lock_command_outcomes WHERE ts >= {from:DateTime}) AS closed
FROM lock_command_sends WHERE ts >= {from:DateTime} GROUP BY command_id
