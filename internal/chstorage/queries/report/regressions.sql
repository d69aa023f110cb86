-- A period's regression alerts (detector regression, issue 19), newest
-- first: which device or lock slice regressed, the shares before and after,
-- and the explanation with its evidence.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: limit UInt32 = 100
SELECT alert_id, ts_ms, severity, status, observed, baseline, explanation, suggested_action
FROM alerts FINAL
WHERE detector = 'regression' AND ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
ORDER BY ts_ms DESC, alert_id LIMIT {limit:UInt32}
