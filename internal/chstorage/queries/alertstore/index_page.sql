-- One page of alerts by the narrow index (status, detector, severity, site
-- and time filters), newest first: the ids and times whose full rows
-- alerts_by_id then reads.
-- param: status String = 'open'
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: site_id String = 's1'
-- param: sites Set(String) = ['s1', 's2']
-- param: from_ms Int64 = 1709251200000
-- param: from_s Int64 = 1709251200
-- param: to_ms Int64 = 1709856000000
-- param: to_s Int64 = 1709856000
-- param: limit UInt32 = 100
SELECT alert_id, ts FROM alert_index FINAL
WHERE 1
/*if site_id*/ AND site_id = {site_id:String} /*end*/
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
/*if status*/ AND status = {status:String} /*end*/
/*if detector*/ AND detector = {detector:String} /*end*/
/*if severity*/ AND severity = {severity:String} /*end*/
/*if from_ms*/ AND ts >= toDateTime({from_s:Int64}) AND ts_ms >= {from_ms:Int64} /*end*/
/*if to_ms*/ AND ts <= toDateTime({to_s:Int64}) AND ts_ms < {to_ms:Int64} /*end*/
ORDER BY ts_ms DESC, alert_id
LIMIT {limit:UInt32}
