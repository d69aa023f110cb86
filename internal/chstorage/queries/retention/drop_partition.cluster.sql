-- Cluster mode: drops the partition of the local table, on one replica of
-- every shard (the replication log drops it on the others). Not ON CLUSTER:
-- see execEachShard in cluster.go.
-- run: each shard
-- param: database Identifier = kfcheck
-- param: table Choice = access_events | access_events_by_subject | access_locations | access_identities | access_rollup_hourly | access_rollup_site_hourly | access_rollup_daily | access_rollup_subject_daily | dead_letters | credential_events | alerts | alert_index | alerts_open | access_rollup_dirty
-- param: partition String = '202301'
ALTER TABLE {database:Identifier}.{table:Choice}_local DROP PARTITION ID {partition:String}
