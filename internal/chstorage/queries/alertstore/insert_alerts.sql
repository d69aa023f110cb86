-- Alert versions: a new or changed alert from the detectors, a status change from the API.
-- param: alert_id String = 'a1'
-- param: version UInt64 = 1709528767000000
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: subject_id String = 'sub1'
-- param: credential_id String = 'c1'
-- param: door_id String = 'd1'
-- param: site_id String = 's1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: window_start_ms Int64 = 1709528167123
-- param: window_end_ms Int64 = 1709528767123
-- param: observed Float64 = 14
-- param: threshold Float64 = 8
-- param: baseline Float64 = 2.5
-- param: evidence Array(String) = ['6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20']
-- param: explanation String = 'sub1 opened 14 doors in 10 minutes; usually 2.5'
-- param: suggested_action String = 'suspend'
-- param: suppressed_count UInt32 = 0
-- param: revision UInt32 = 0
-- param: rules_version Int32 = 3
-- param: status String = 'open'
-- param: status_note String = ''
-- param: status_by String = ''
-- param: status_ms Int64 = 0
-- param: source_received_ms Int64 = 1709528767500
-- param: detected_ms Int64 = 1709528767600
-- param: updated_ms Int64 = 1709528767600
INSERT INTO alerts (alert_id, version, detector, severity, subject_id, credential_id, door_id, site_id, ts, ts_ms,
    window_start_ms, window_end_ms, observed, threshold, baseline, evidence, explanation, suggested_action,
    suppressed_count, revision, rules_version, status, status_note, status_by, status_ms, source_received_ms,
    detected_ms, updated_ms)
VALUES ({alert_id:String}, {version:UInt64}, {detector:String}, {severity:String}, {subject_id:String},
    {credential_id:String}, {door_id:String}, {site_id:String}, {ts:DateTime}, {ts_ms:Int64},
    {window_start_ms:Int64}, {window_end_ms:Int64}, {observed:Float64}, {threshold:Float64}, {baseline:Float64},
    {evidence:Array(String)}, {explanation:String}, {suggested_action:String}, {suppressed_count:UInt32},
    {revision:UInt32}, {rules_version:Int32}, {status:String}, {status_note:String}, {status_by:String},
    {status_ms:Int64}, {source_received_ms:Int64}, {detected_ms:Int64}, {updated_ms:Int64})
