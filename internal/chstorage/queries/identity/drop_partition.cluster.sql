-- Cluster mode: drops a staging table's day on one replica of every shard
-- (replicated to the others).
-- run: each shard
-- param: database Identifier = kfcheck
-- param: table Choice = identity_staged | identity_decisions
-- param: partition String = '20240301'
ALTER TABLE {database:Identifier}.{table:Choice}_local DROP PARTITION ID {partition:String}
