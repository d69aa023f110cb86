-- Distinct alerts detected since a time.
-- param: since_ms Int64 = 1709528700000
SELECT uniqExact(alert_id) FROM alerts WHERE detected_ms >= {since_ms:Int64}
