-- The hours (or days) in a range with inserts the rollup job may not have
-- rolled up yet (marked since its watermark minus slack).
-- param: unit Int64 = 3600000
-- param: since_s Int64 = 1709528700
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: limit UInt32 = 2001
SELECT DISTINCT intDiv(hour_ms, {unit:Int64}) * {unit:Int64} FROM access_rollup_dirty
WHERE marked >= toDateTime({since_s:Int64}) AND hour_ms >= {from_ms:Int64} AND hour_ms < {to_ms:Int64}
LIMIT {limit:UInt32}
