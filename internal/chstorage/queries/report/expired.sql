-- Credentials still live at a time after their end date, earliest end first.
-- param: to_ms Int64 = 1710115200000
-- param: live Set(String) = ['issued', 'pending_activation', 'active', 'suspended']
-- param: site String = 's1'
-- param: limit UInt32 = 100
SELECT credential_id, subject_id, role, site_id, state, valid_until_ms, break_glass, exception FROM (
    SELECT credential_id, argMax(state, seq) AS state, argMax(subject_id, seq) AS subject_id,
        argMax(role, seq) AS role, argMax(site_id, seq) AS site_id,
        argMax(valid_until_ms, seq) AS valid_until_ms, argMax(break_glass, seq) AS break_glass,
        argMax(exception, seq) AS exception
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
)
WHERE state IN {live:Set(String)} AND valid_until_ms > 0 AND valid_until_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
ORDER BY valid_until_ms, credential_id LIMIT {limit:UInt32}
