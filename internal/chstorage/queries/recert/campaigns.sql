-- Campaigns (the newest version of each), newest first: one by id, those of
-- some sites, or those past their deadline and not closed.
-- param: campaign_id String = 'rc1'
-- param: sites Set(String) = ['s1']
-- param: due_ms Int64 = 1710133567000
-- param: limit UInt64 = 100
SELECT campaign_id, site_id, created_ms, deadline_ms, created_by, on_deadline, closed_ms, version
FROM recert_campaigns FINAL
WHERE 1
/*if campaign_id*/ AND campaign_id = {campaign_id:String} /*end*/
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
/*if due_ms*/ AND closed_ms = 0 AND deadline_ms <= {due_ms:Int64} /*end*/
ORDER BY created_ms DESC, campaign_id
LIMIT {limit:UInt64}
