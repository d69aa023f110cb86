-- Lock commands of some revocations that were applied.
-- param: ids Array(String) = ['r1', 'r2']
SELECT uniqExact(command_id) FROM lock_acks WHERE status = 'applied' AND has({ids:Array(String)}, revocation_id)
