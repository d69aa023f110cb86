-- Cluster mode: merges the local table of the shard this node holds (the
-- merge replicates to its replicas). 18.16 fails OPTIMIZE … ON CLUSTER on a
-- replicated table (code 49 from the second replica), so on a cluster of
-- several shards the other shards merge on their own schedule.
OPTIMIZE TABLE identity_resources_local FINAL
