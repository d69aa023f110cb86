-- GET /v1/kpis slices: live credentials at the end of a range and how many
-- of them are exceptions (or break-glass), per site (dim site; 'all': one
-- row, key '').
-- param: dim String = 'site'
-- param: live Set(String) = ['requested', 'active']
-- param: to_ms Int64 = 1709596800000
-- param: site Set(String) = ['site-a']
SELECT if({dim:String} = 'site', site, '') AS k, countIf(cur_state IN {live:Set(String)}) AS live,
    countIf(cur_state IN {live:Set(String)} AND exc)
FROM (
    SELECT credential_id, argMax(state, seq) AS cur_state, argMax(site_id, seq) AS site,
        argMax(exception, seq) = 1 OR argMax(break_glass, seq) = 1 AS exc
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
)
WHERE 1 /*if site*/ AND site IN {site:Set(String)} /*end*/
GROUP BY k ORDER BY live DESC, k LIMIT 500
