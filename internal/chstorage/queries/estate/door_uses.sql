-- Distinct access events per door that count as uses (a credential presented
-- at the door, opened or refused) in a time range, one site or all: the
-- traffic the weak-link report ranks by. access_events is sorted by
-- (site_id, ts, event_id): the range is an index range within each site.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-05 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: actions Array(String) = ['unlock', 'unlatch', 'access_denied']
-- param: site String = 's1'
SELECT site_id, door_id, uniqExact(event_id)
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
    AND has({actions:Array(String)}, action)
    /*if site*/ AND site_id = {site:String} /*end*/
GROUP BY site_id, door_id
