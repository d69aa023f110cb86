-- One page of open alerts (detector, severity, site and time filters),
-- newest first, from the open-alerts table: reads as many rows as there
-- are open alerts (of the sites), not as many as were ever raised. The ids
-- and times whose full rows alerts_by_id then reads.
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: site_id String = 's1'
-- param: sites Set(String) = ['s1', 's2']
-- param: from_ms Int64 = 1709251200000
-- param: from_s Int64 = 1709251200
-- param: to_ms Int64 = 1709856000000
-- param: to_s Int64 = 1709856000
-- param: limit UInt32 = 100
SELECT alert_id, t FROM (
    SELECT alert_id, sum(sign) AS n, argMaxIf(ts, version, sign = 1) AS t, argMaxIf(ts_ms, version, sign = 1) AS t_ms,
        argMaxIf(detector, version, sign = 1) AS det, argMaxIf(severity, version, sign = 1) AS sev
    FROM alerts_open
    WHERE 1
    /*if site_id*/ AND site_id = {site_id:String} /*end*/
    /*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
    /*if from_ms*/ AND ts >= toDateTime({from_s:Int64}) AND ts_ms >= {from_ms:Int64} /*end*/
    /*if to_ms*/ AND ts <= toDateTime({to_s:Int64}) AND ts_ms < {to_ms:Int64} /*end*/
    GROUP BY site_id, alert_id
)
WHERE n > 0
/*if detector*/ AND det = {detector:String} /*end*/
/*if severity*/ AND sev = {severity:String} /*end*/
ORDER BY t_ms DESC, alert_id
LIMIT {limit:UInt32}
