-- Cluster mode: merges the local table on one replica of every shard (the
-- merge replicates). 18.16 answers OPTIMIZE … FINAL of a replicated table
-- with nothing to merge with code 49, which counts as done.
-- run: each shard
-- param: database Identifier = kfcheck
OPTIMIZE TABLE {database:Identifier}.identity_resources_local FINAL
