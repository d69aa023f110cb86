-- Alert versions' index rows (written before the alerts rows, same version).
-- param: site_id String = 's1'
-- param: alert_id String = 'a1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: status String = 'open'
-- param: version UInt64 = 1709528767000000
INSERT INTO alert_index (site_id, alert_id, ts, ts_ms, detector, severity, status, version)
VALUES ({site_id:String}, {alert_id:String}, {ts:DateTime}, {ts_ms:Int64}, {detector:String}, {severity:String}, {status:String}, {version:UInt64})
