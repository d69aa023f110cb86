-- regression: the newest denied events of one value of a dimension in a
-- time range (an alert's evidence), and where they were denied most: the
-- events' lock firmware (for a phone dimension) or OS version (for a lock
-- dimension) come with each id.
-- param: dim String = 'os_version'
-- param: value String = 'ios 19.0'
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: limit UInt32 = 20
SELECT toString(event_id), other FROM (
    SELECT event_id, ts_ms,
        multiIf({dim:String} = 'lock_model', lock_model, {dim:String} = 'lock_firmware', lock_firmware,
            {dim:String} = 'phone_model', phone_model,
            {dim:String} = 'os_version', if(os_name = '' OR os_version = '', concat(os_name, os_version), concat(os_name, ' ', os_version)),
            {dim:String} = 'app_version', app_version, '') AS k,
        if({dim:String} IN ('lock_model', 'lock_firmware'),
            if(os_name = '' OR os_version = '', concat(os_name, os_version), concat(os_name, ' ', os_version)), lock_firmware) AS other
    FROM access_events
    WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
        AND outcome = 'denied'
)
WHERE k = {value:String}
ORDER BY ts_ms DESC, event_id LIMIT {limit:UInt32}
