-- The exception register as it stood at a moment: each exception's newest
-- record written before it (of those whose record then was of one site).
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT argMax(record, version) AS record FROM exceptions
WHERE ts_ms < {to_ms:Int64}
GROUP BY id
/*if site*/ HAVING argMax(site_id, version) = {site:String} /*end*/
ORDER BY id
