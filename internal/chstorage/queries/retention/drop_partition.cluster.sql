-- Cluster mode: drops the partition of the local table on every shard (a
-- replicated table's DROP PARTITION runs on one replica and replicates).
-- param: database Identifier = kfcheck
-- param: cluster Identifier = keyfleet
-- param: table Choice = access_events | access_events_by_subject | access_locations | access_identities | access_rollup_hourly | access_rollup_subject_daily | dead_letters | credential_events | alerts | alert_index | access_rollup_dirty
-- param: partition String = '202301'
ALTER TABLE {database:Identifier}.{table:Choice}_local ON CLUSTER {cluster:Identifier} DROP PARTITION ID {partition:String}
