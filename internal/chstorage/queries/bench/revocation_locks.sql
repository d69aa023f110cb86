-- The lock commands of some revocations.
-- param: ids Array(String) = ['r1', 'r2']
SELECT revocation_id, vendor, command_id, issued_ms FROM revocation_locks FINAL WHERE has({ids:Array(String)}, revocation_id)
