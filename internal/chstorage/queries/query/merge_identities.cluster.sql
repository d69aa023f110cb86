-- Cluster mode: merges subject_identities_local on one replica of every
-- shard (see identity/optimize_resources.cluster.sql).
-- run: each shard
-- param: database Identifier = kfcheck
OPTIMIZE TABLE {database:Identifier}.subject_identities_local FINAL
