-- Cluster mode: merges the local table of the shard this node holds (see
-- identity/optimize_resources.cluster.sql for why not ON CLUSTER).
OPTIMIZE TABLE subject_identities_local FINAL
