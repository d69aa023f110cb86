-- When the suspensions recorded at a site since a time were done (the
-- per-minute suspension budget, read once per site and process).
-- param: site_id String = 's1'
-- param: since_ms Int64 = 1709528707000
SELECT ts_ms FROM alert_actions FINAL
WHERE action = 'suspend' AND outcome = 'done' AND site_id = {site_id:String} AND ts_ms > {since_ms:Int64}
