-- A request's item statuses (only item {item} when one_item).
-- param: request_id String = 'rq1'
-- param: one_item Bool = true
-- param: item UInt32 = 0
SELECT item, argMax(credential_id, version), argMax(status, version), argMax(error, version), argMax(detail, version)
FROM control_request_items WHERE request_id = {request_id:String}
/*if one_item*/ AND item = {item:UInt32} /*end*/
GROUP BY item ORDER BY item
