-- GET /v1/kpis slices: access KPIs per value of one dimension (dim; 'all':
-- one row, key '') over a time range, filtered: distinct events, granted
-- and denied attempts, and support-relevant failures (a key that should
-- have worked did not: denied or error with reason invalid_credential,
-- unknown, insufficient_battery, jammed or none; policy denials — revoked,
-- expired, outside_schedule, disabled_user — are not failures). The os_version
-- key is "<os_name> <os_version>". At most 500 keys, most events first.
-- param: dim String = 'os_version'
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: site Set(String) = ['s1']
-- param: vendor Set(String) = ['nuki']
-- param: lock_model Set(String) = ['m1']
-- param: lock_firmware Set(String) = ['1.0']
-- param: phone_model Set(String) = ['Pixel 9']
-- param: os_name Set(String) = ['android']
-- param: os_version Set(String) = ['16']
-- param: app_version Set(String) = ['2026.11.1']
SELECT k, uniqExact(event_id) AS events, uniqExactIf(event_id, outcome = 'granted'), uniqExactIf(event_id, outcome = 'denied'),
    uniqExactIf(event_id, outcome IN ('denied', 'error') AND reason IN ('invalid_credential', 'unknown', 'insufficient_battery', 'jammed', ''))
FROM (
    SELECT multiIf({dim:String} = 'site', site_id, {dim:String} = 'vendor', vendor, {dim:String} = 'lock_model', lock_model,
            {dim:String} = 'lock_firmware', lock_firmware, {dim:String} = 'phone_model', phone_model,
            {dim:String} = 'os_version', if(os_name = '' OR os_version = '', concat(os_name, os_version), concat(os_name, ' ', os_version)), {dim:String} = 'app_version', app_version, '') AS k,
        event_id, outcome, reason
    FROM access_events
    WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
        /*if site*/ AND site_id IN {site:Set(String)} /*end*/
        /*if vendor*/ AND vendor IN {vendor:Set(String)} /*end*/
        /*if lock_model*/ AND lock_model IN {lock_model:Set(String)} /*end*/
        /*if lock_firmware*/ AND lock_firmware IN {lock_firmware:Set(String)} /*end*/
        /*if phone_model*/ AND phone_model IN {phone_model:Set(String)} /*end*/
        /*if os_name*/ AND os_name IN {os_name:Set(String)} /*end*/
        /*if os_version*/ AND os_version IN {os_version:Set(String)} /*end*/
        /*if app_version*/ AND app_version IN {app_version:Set(String)} /*end*/
)
GROUP BY k ORDER BY events DESC, k LIMIT 500
