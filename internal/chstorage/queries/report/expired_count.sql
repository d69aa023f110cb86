-- How many credentials were still live at a time after their end date.
-- param: to_ms Int64 = 1710115200000
-- param: live Set(String) = ['issued', 'pending_activation', 'active', 'suspended']
-- param: site String = 's1'
SELECT count() FROM (
    SELECT credential_id, argMax(state, seq) AS state, argMax(site_id, seq) AS site_id,
        argMax(valid_until_ms, seq) AS valid_until_ms
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
)
WHERE state IN {live:Set(String)} AND valid_until_ms > 0 AND valid_until_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
