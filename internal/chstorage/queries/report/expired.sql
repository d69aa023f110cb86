-- Credentials still live at a time that have an end date or are break-glass
-- (the candidates of the expired_exception check, which the report applies in
-- code: detect.CheckExpired): each credential's latest record before the time
-- (argMax over seq collapses re-delivered records), its latest end date set,
-- break-glass if any record says so, and its first activation. Aliases differ
-- from the columns: ClickHouse resolves a name to the alias anywhere in the query.
-- param: to_ms Int64 = 1710115200000
-- param: live Set(String) = ['issued', 'pending_activation', 'active', 'suspended']
-- param: site String = 's1'
SELECT credential_id, subject_id, role, site_id, cur_state, changed_ms, end_ms, bg, exception, active_since_ms FROM (
    SELECT credential_id, argMax(state, seq) AS cur_state, argMax(subject_id, seq) AS subject_id,
        argMax(role, seq) AS role, argMax(site_id, seq) AS site_id, max(ts_ms) AS changed_ms,
        argMaxIf(valid_until_ms, seq, valid_until_ms > 0) AS end_ms, max(break_glass) AS bg,
        argMax(exception, seq) AS exception, minIf(ts_ms, state = 'active') AS active_since_ms
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
) AS latest
WHERE cur_state IN {live:Set(String)} AND (end_ms > 0 OR bg = 1)
/*if site*/ AND site_id = {site:String} /*end*/
