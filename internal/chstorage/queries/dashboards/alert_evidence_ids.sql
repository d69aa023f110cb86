-- The events an alert cites, with its site and window.
-- param: alert_id String = 'a1'
SELECT evidence, site_id, ts_ms, window_start_ms, window_end_ms FROM alerts FINAL WHERE alert_id = {alert_id:String} LIMIT 1
