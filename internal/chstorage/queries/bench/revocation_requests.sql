-- When some revocations were requested.
-- param: ids Array(String) = ['r1', 'r2']
SELECT revocation_id, requested_ms FROM revocation_requests FINAL WHERE has({ids:Array(String)}, revocation_id)
