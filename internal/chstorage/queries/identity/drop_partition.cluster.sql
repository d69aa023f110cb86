-- Cluster mode: drops a staging table's day on every shard's local table.
-- param: database Identifier = kfcheck
-- param: cluster Identifier = keyfleet
-- param: table Choice = identity_staged | identity_decisions
-- param: partition String = '20240301'
ALTER TABLE {database:Identifier}.{table:Choice}_local ON CLUSTER {cluster:Identifier} DROP PARTITION ID {partition:String}
