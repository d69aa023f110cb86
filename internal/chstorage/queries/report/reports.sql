-- Stored reports, optionally of one site, newest week first.
-- param: site String = 's1'
-- param: limit UInt32 = 50
SELECT report_id, week, site, from_ms, to_ms, generated_ms, trigger FROM reports FINAL
/*if site*/ WHERE site = {site:String} /*end*/
ORDER BY from_ms DESC, site, report_id LIMIT {limit:UInt32}
