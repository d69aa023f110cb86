-- Alerts matching a filter (each part optional), newest first.
-- param: status String = 'open'
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: subject_id String = 'sub1'
-- param: credential_id String = 'c1'
-- param: door_id String = 'd1'
-- param: site_id String = 's1'
-- param: sites Set(String) = ['s1', 's2']
-- param: from_ms Int64 = 1709251200000
-- param: from_s Int64 = 1709251200
-- param: to_ms Int64 = 1709856000000
-- param: to_s Int64 = 1709856000
-- param: limit UInt32 = 100
SELECT alert_id, version, detector, severity, subject_id, credential_id, door_id, site_id, ts, ts_ms,
    window_start_ms, window_end_ms, observed, threshold, baseline, evidence, explanation, suggested_action,
    suppressed_count, revision, rules_version, status, status_note, status_by, status_ms, source_received_ms,
    detected_ms, updated_ms
FROM alerts FINAL
WHERE 1
/*if status*/ AND status = {status:String} /*end*/
/*if detector*/ AND detector = {detector:String} /*end*/
/*if severity*/ AND severity = {severity:String} /*end*/
/*if subject_id*/ AND subject_id = {subject_id:String} /*end*/
/*if credential_id*/ AND credential_id = {credential_id:String} /*end*/
/*if door_id*/ AND door_id = {door_id:String} /*end*/
/*if site_id*/ AND site_id = {site_id:String} /*end*/
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
/*if from_ms*/ AND ts >= toDateTime({from_s:Int64}) AND ts_ms >= {from_ms:Int64} /*end*/
/*if to_ms*/ AND ts <= toDateTime({to_s:Int64}) AND ts_ms < {to_ms:Int64} /*end*/
ORDER BY ts_ms DESC, alert_id
LIMIT {limit:UInt32}
