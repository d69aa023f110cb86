-- Generates stored alerts for the scaling benchmark: n alerts over
-- [start, start+span), 20 sites, 2 % of them open (the rest acknowledged or
-- resolved; the open ones spread over every site).
-- param: n UInt64 = 100
-- param: start Int64 = 1709510400000
-- param: span Int64 = 604800000
INSERT INTO alerts (alert_id, version, detector, severity, subject_id, credential_id, door_id, site_id, ts, ts_ms,
    window_start_ms, window_end_ms, observed, threshold, baseline, evidence, explanation, suggested_action,
    suppressed_count, revision, rules_version, status, status_note, status_by, status_ms, source_received_ms,
    detected_ms, updated_ms)
SELECT concat('bench-', toString(number)), 1, arrayElement(['unlock_burst','denied_storm','door_forced','off_schedule'], (number % 4) + 1),
    arrayElement(['low','medium','high'], (number % 3) + 1), concat('subj-', toString(number % 20000)), '', concat('door-', toString(number % 50)),
    concat('site-', toString(number % 20)), toDateTime(intDiv(t, 1000)), t, t - 60000, t, 10, 5, 2, ['e'], 'bench', 'look',
    0, 0, 1, if(cityHash64(number, 13) % 50 = 0, 'open', if(number % 2 = 0, 'acknowledged', 'resolved')), '', '', t, t, t, t
FROM (SELECT number, {start:Int64} + (cityHash64(number, 11) % {span:Int64}) AS t FROM numbers({n:UInt64})) AS generated
