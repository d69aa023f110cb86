-- The sites of some doors or locks (access_events' index leads with site_id).
-- param: where Fragment = door_id IN ('d1') AND lock_id IN ('l1')
-- param: limit UInt32 = 1001
SELECT DISTINCT site_id FROM access_locations WHERE {where:Fragment} LIMIT {limit:UInt32}
