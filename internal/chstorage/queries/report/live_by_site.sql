-- Live credentials by site at a moment (the exception register's rates per
-- 1,000 credentials).
-- param: to_ms Int64 = 1710115200000
-- param: live Set(String) = ['requested', 'approved', 'issued', 'pending_activation', 'active', 'suspended']
SELECT site_id, count() FROM (
    SELECT credential_id, argMax(state, seq) AS state, argMax(site_id, seq) AS site_id
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
)
WHERE state IN {live:Set(String)}
GROUP BY site_id
ORDER BY site_id
