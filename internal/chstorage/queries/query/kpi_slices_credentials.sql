-- GET /v1/kpis slices: credential KPIs per value of one dimension (dim:
-- site, phone_model, os_version, app_version; 'all': one row, key '') of
-- the credentials issued in a range: issued, activated with verified
-- attestation, and the time from request to issue (count, p50, p95 ms).
-- The phone dimensions are the activation's (credential_events, 0131): a
-- credential not activated yet has none (key ''). The os_version key is
-- "<os_name> <os_version>". At most 500 keys.
-- param: dim String = 'site'
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site Set(String) = ['site-a']
-- param: phone_model Set(String) = ['Pixel 9']
-- param: os_name Set(String) = ['android']
-- param: os_version Set(String) = ['16']
-- param: app_version Set(String) = ['2026.11.1']
SELECT multiIf({dim:String} = 'site', site, {dim:String} = 'phone_model', phone, {dim:String} = 'os_version', if(os = '' OR osv = '', concat(os, osv), concat(os, ' ', osv)),
        {dim:String} = 'app_version', app, '') AS k,
    count() AS issued, countIf(activated), countIf(req_ms > 0 AND iss_ms > 0),
    quantilesExactIf(0.5, 0.95)(toFloat64(iss_ms - req_ms), req_ms > 0 AND iss_ms > 0)
FROM (
    SELECT credential_id, max(op = 'issue' AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}) AS issued_in,
        max(op = 'activate' AND attested = 1) AS activated,
        minIf(issued_ms, op = 'issue') AS iss_ms, minIf(requested_ms, op = 'issue') AS req_ms,
        argMax(site_id, seq) AS site,
        argMaxIf(phone_model, seq, op = 'activate') AS phone, argMaxIf(os_name, seq, op = 'activate') AS os,
        argMaxIf(os_version, seq, op = 'activate') AS osv, argMaxIf(app_version, seq, op = 'activate') AS app
    FROM credential_events WHERE ts >= {from:DateTime} GROUP BY credential_id
)
WHERE issued_in
    /*if site*/ AND site IN {site:Set(String)} /*end*/
    /*if phone_model*/ AND phone IN {phone_model:Set(String)} /*end*/
    /*if os_name*/ AND os IN {os_name:Set(String)} /*end*/
    /*if os_version*/ AND osv IN {os_version:Set(String)} /*end*/
    /*if app_version*/ AND app IN {app_version:Set(String)} /*end*/
GROUP BY k ORDER BY issued DESC, k LIMIT 500
