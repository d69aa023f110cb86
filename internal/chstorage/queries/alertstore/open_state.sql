-- What the open-alerts table holds for some alerts (by its key when the
-- sites are known): the sum of signs per row key, its time (an alert's ts
-- never changes) and the newest opening row's detector and severity, so a writer adds only the difference to what it wants.
-- param: ids Set(String) = ['a1', 'a2']
-- param: sites Set(String) = ['s1']
SELECT site_id, alert_id, toInt64(sum(sign)) AS n, argMax(ts, version), argMax(ts_ms, version),
    argMaxIf(detector, version, sign = 1), argMaxIf(severity, version, sign = 1), max(version)
FROM alerts_open
WHERE /*if sites*/ site_id IN {sites:Set(String)} AND /*end*/ alert_id IN {ids:Set(String)}
GROUP BY site_id, alert_id
