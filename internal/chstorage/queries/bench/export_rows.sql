-- Distinct events in a time range (what an export of it writes).
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT uniqExact(event_id) FROM access_events WHERE ts >= toDateTime(intDiv({from_ms:Int64}, 1000)) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
