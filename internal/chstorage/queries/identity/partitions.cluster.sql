-- Cluster mode: a staging table's active partitions on every shard.
-- param: database String = 'kfcheck'
-- param: cluster Identifier = keyfleet
-- param: table String = 'identity_staged'
SELECT DISTINCT partition_id FROM cluster({cluster:Identifier}, system, parts)
WHERE database = {database:String} AND table = concat({table:String}, '_local') AND active
ORDER BY partition_id
