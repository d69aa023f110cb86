-- Dead letters of one week.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT count() FROM dead_letters
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
