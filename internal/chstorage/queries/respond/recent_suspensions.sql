-- Suspensions done at a site since a time (the per-minute suspension budget).
-- param: site_id String = 's1'
-- param: since_ms Int64 = 1709528707000
SELECT count() FROM alert_actions FINAL
WHERE action = 'suspend' AND outcome = 'done' AND site_id = {site_id:String} AND ts_ms > {since_ms:Int64}
