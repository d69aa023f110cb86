-- The replicas of a cluster's shards, as remote_servers lists them (cluster
-- mode runs a replicated table's ALTER and OPTIMIZE on one replica of each
-- shard: the replication log carries it to the others).
-- param: cluster String = 'keyfleet'
SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = {cluster:String}
ORDER BY shard_num, replica_num
