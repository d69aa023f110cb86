-- A period's access events by one dimension (site, vendor, lock_model,
-- lock_firmware, phone_model, os_version — keyed "<os_name> <os_version>" —
-- or app_version), optionally of one site: distinct events, denied, the
-- doors' offline and battery-low reports, and distinct subjects.
-- param: dim String = 'os_version'
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT multiIf({dim:String} = 'site', site_id, {dim:String} = 'vendor', vendor, {dim:String} = 'lock_model', lock_model,
        {dim:String} = 'lock_firmware', lock_firmware, {dim:String} = 'phone_model', phone_model,
        {dim:String} = 'os_version', if(os_name = '' OR os_version = '', concat(os_name, os_version), concat(os_name, ' ', os_version)),
        {dim:String} = 'app_version', app_version, '') AS k,
    uniqExact(event_id), uniqExactIf(event_id, outcome = 'denied'),
    uniqExactIf(event_id, action = 'offline'), uniqExactIf(event_id, action = 'battery_low'),
    uniqExactIf(subject_id, subject_id != '')
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY k ORDER BY k
