-- Time from request to issue of the credentials issued in a range.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT count(), quantilesExact(0.5, 0.95, 0.99)(toFloat64(iss_ms - req_ms))
FROM (
    SELECT credential_id, min(issued_ms) AS iss_ms, min(requested_ms) AS req_ms
    FROM credential_events
    WHERE op = 'issue' AND ts >= {from:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64} AND requested_ms > 0
    GROUP BY credential_id
)
