-- Access KPIs over a time range (distinct subjects, doors, locks; distinct
-- events of some kinds).
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT uniqExactIf(subject_id, subject_id != ''), uniqExactIf(door_id, door_id != ''),
    uniqExactIf(lock_id, lock_id != ''), uniqExactIf(event_id, attested = 'unattested' AND outcome = 'granted'),
    uniqExactIf(event_id, break_glass = 1), uniqExactIf(event_id, action = 'emergency_unlock')
FROM access_events WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
