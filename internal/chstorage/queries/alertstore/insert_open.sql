-- Changes to the open-alerts set: +1 for an alert that opens (or the new
-- state of an open alert), -1 to cancel a row of the same key.
-- param: site_id String = 's1'
-- param: alert_id String = 'a1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: version UInt64 = 1709528767000000
-- param: sign Int8 = 1
INSERT INTO alerts_open (site_id, alert_id, ts, ts_ms, detector, severity, version, sign)
VALUES ({site_id:String}, {alert_id:String}, {ts:DateTime}, {ts_ms:Int64}, {detector:String}, {severity:String}, {version:UInt64}, {sign:Int8})
