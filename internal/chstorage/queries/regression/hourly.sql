-- regression: access attempts (granted or denied) and denials per hour
-- and value of one dimension over a time range (the os_version value is
-- "<os_name> <os_version>"; '' is unknown).
-- param: dim String = 'os_version'
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT k, h, uniqExact(event_id), uniqExactIf(event_id, outcome = 'denied')
FROM (
    SELECT multiIf({dim:String} = 'lock_model', lock_model, {dim:String} = 'lock_firmware', lock_firmware,
            {dim:String} = 'phone_model', phone_model,
            {dim:String} = 'os_version', if(os_name = '' OR os_version = '', concat(os_name, os_version), concat(os_name, ' ', os_version)),
            {dim:String} = 'app_version', app_version, '') AS k,
        intDiv(ts_ms, 3600000) * 3600000 AS h, event_id, outcome
    FROM access_events
    WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
        AND outcome IN ('granted', 'denied')
)
GROUP BY k, h ORDER BY k, h
