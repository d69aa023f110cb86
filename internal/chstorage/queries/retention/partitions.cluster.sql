-- Cluster mode: the local table's active partitions on one replica of every
-- shard (cluster()), rows and bytes summed over the shards. The database is
-- named: currentDatabase() would be evaluated on the remote node ('default').
-- param: database String = 'kfcheck'
-- param: cluster Identifier = keyfleet
-- param: table String = 'access_events'
SELECT partition_id, sum(rows), sum(bytes_on_disk) FROM cluster({cluster:Identifier}, system, parts)
WHERE database = {database:String} AND table = concat({table:String}, '_local') AND active
GROUP BY partition_id ORDER BY partition_id
