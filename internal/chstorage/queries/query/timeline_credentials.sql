-- A subject's credential lifecycle records in a time range, newest first,
-- after the cursor; the shown columns (those the table has, as text) and the
-- keyset condition are built by code.
-- param: columns Fragment = toString(credential_id), toString(seq), toString(ts_ms), toString(subject_id), toString(state)
-- The subject's credentials come from credential_subjects (credential_events
-- is ordered by credential_id), the time range prunes partitions.
-- param: subject String = 'sub1'
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: after Fragment = (ts_ms < 1709528767123 OR (ts_ms = 1709528767123 AND (credential_id < 'c1' OR (credential_id = 'c1' AND seq < 3))))
-- param: sites Set(String) = ['s1', 's2']
-- param: limit UInt32 = 101
SELECT toInt64(ts_ms), toString(credential_id), toUInt64(seq), {columns:Fragment}
FROM credential_events
WHERE credential_id IN (SELECT credential_id FROM credential_subjects WHERE subject_id = {subject:String})
AND subject_id = {subject:String}
AND ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if after*/ AND {after:Fragment} /*end*/
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
ORDER BY ts_ms DESC, credential_id DESC, seq DESC LIMIT 1 BY credential_id, seq LIMIT {limit:UInt32}
