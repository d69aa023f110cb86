-- Credentials active at a week end (their latest record before it; argMax
-- over seq collapses re-delivered records) and unchanged since a cutoff.
-- param: end_ms Int64 = 1710115200000
-- param: cutoff_ms Int64 = 1707523200000
-- param: site String = 's1'
SELECT credential_id, subject_id, role, site_id, changed_ms FROM (
    SELECT credential_id, argMax(state, seq) AS state, argMax(subject_id, seq) AS subject_id,
        argMax(role, seq) AS role, argMax(site_id, seq) AS site_id, max(ts_ms) AS changed_ms
    FROM credential_events WHERE ts_ms < {end_ms:Int64} GROUP BY credential_id
)
WHERE state = 'active' AND changed_ms < {cutoff_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
