-- Each credential's last granted use since a time (max() needs no FINAL).
-- param: since_s Int64 = 1709251200
SELECT credential_id, toInt64(max(ts_ms)) FROM access_events
WHERE ts >= toDateTime({since_s:Int64}) AND outcome = 'granted' AND credential_id != ''
GROUP BY credential_id
