-- A subject's alerts in a time range (the newest version of each: FINAL),
-- newest first, after the cursor (the keyset condition is built by code).
-- ts (the table's sorting key and partition) bounds the read to the range's
-- granules (ts_ms alone would read every alert of every time); the subject
-- and the range go in PREWHERE, so only the subject's granules are read
-- whole. Every version of an alert has the same subject, site and time, so
-- filtering them before FINAL leaves each alert's versions all in or all out.
-- param: subject String = 'sub1'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: after Fragment = (ts_ms < 1709528767123 OR (ts_ms = 1709528767123 AND alert_id < 'a1'))
-- param: sites Set(String) = ['s1', 's2']
-- param: limit UInt32 = 101
SELECT alert_id, detector, severity, status, credential_id, door_id, site_id, ts_ms,
    window_start_ms, window_end_ms, observed, threshold, explanation, suggested_action, evidence
FROM alerts FINAL
PREWHERE ts >= toDateTime({from_s:Int64}) AND ts <= toDateTime({to_s:Int64})
AND subject_id = {subject:String} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
WHERE 1
/*if after*/ AND {after:Fragment} /*end*/
ORDER BY ts_ms DESC, alert_id DESC LIMIT {limit:UInt32}
