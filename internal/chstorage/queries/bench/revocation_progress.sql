-- Revocations recorded and the lock commands they sent.
-- param: ids Array(String) = ['r1', 'r2']
SELECT uniqExact(revocation_id), count() FROM revocation_locks FINAL WHERE has({ids:Array(String)}, revocation_id)
