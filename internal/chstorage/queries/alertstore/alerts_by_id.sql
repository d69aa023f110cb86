-- Every stored version of some alerts (the reader keeps each alert's
-- highest), within an event-time span when it is known (from alert_index or
-- alerts_open: the read then prunes by the primary key). The ids and the
-- span filter in PREWHERE, so only the granules' alert_id and ts are read for
-- the span's other alerts instead of every column (a site's page of open
-- alerts spans days of every site's alerts). No FINAL: 18.16 merges it in one
-- stream, over every column of the span.
-- param: ids Set(String) = ['a1', 'a2']
-- param: from DateTime = '2024-03-01 00:00:00'
-- param: to DateTime = '2024-03-08 00:00:00'
SELECT alert_id, version, detector, severity, subject_id, credential_id, door_id, site_id, ts, ts_ms,
    window_start_ms, window_end_ms, observed, threshold, baseline, evidence, explanation, suggested_action,
    suppressed_count, revision, rules_version, status, status_note, status_by, status_ms, source_received_ms,
    detected_ms, updated_ms
FROM alerts
PREWHERE alert_id IN {ids:Set(String)}
/*if from*/ AND ts >= {from:DateTime} AND ts <= {to:DateTime} /*end*/
