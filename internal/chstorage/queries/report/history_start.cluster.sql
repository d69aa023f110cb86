-- Cluster mode: the oldest second of the active access_events_local parts
-- on every shard, and how many parts.
-- param: database String = 'kfcheck'
-- param: cluster Identifier = keyfleet
SELECT toUInt32(min(min_time)), count() FROM cluster({cluster:Identifier}, system, parts)
WHERE database = {database:String} AND table = 'access_events_local' AND active AND rows > 0
