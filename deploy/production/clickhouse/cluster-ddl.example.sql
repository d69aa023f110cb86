-- How a keyfleet table looks on the `keyfleet` cluster (1 shard x N replicas):
-- a Replicated*MergeTree local table on every node plus a Distributed table of
-- the same name pattern that reads and writes through the cluster. Run once,
-- on any node; ON CLUSTER repeats it on every node through ZooKeeper.
--
-- Notes from ClickHouse 18.16 (scripts/clickhouse-cluster.sh check shows each):
-- * ON CLUSTER waits for every node up to distributed_ddl_task_timeout (180 s);
--   with a node down it fails with code 159 but stays queued and the node runs
--   it when it returns. Set the timeout as a client/session setting
--   (clickhouse-client --distributed_ddl_task_timeout=30): a SETTINGS clause on
--   CREATE TABLE is taken as a MergeTree setting and fails (code 36).
-- * INSERT takes no SETTINGS clause on 18.16; pass settings per connection.
-- * insert_quorum=N refuses writes (code 285) while fewer than N replicas are up;
--   0 (the default) acknowledges after one replica has the block.
-- * Distributed INSERTs are queued and sent in the background unless
--   insert_distributed_sync=1; writing to the local Replicated table of any
--   node is equivalent with one shard and needs no queue.
-- * The zookeeper path must be unique per table and shard, {replica} per node.

CREATE DATABASE IF NOT EXISTS keyfleet ON CLUSTER keyfleet;

CREATE TABLE IF NOT EXISTS keyfleet.access_events_local ON CLUSTER keyfleet
(
    event_id String,
    occurred_at DateTime,
    occurred_ms Int64,
    site_id String,
    door_id String,
    subject_id String,
    action String,
    outcome String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/keyfleet/access_events_local', '{replica}')
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (site_id, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS keyfleet.access_events ON CLUSTER keyfleet
AS keyfleet.access_events_local
ENGINE = Distributed(keyfleet, keyfleet, access_events_local, cityHash64(event_id));

-- Retention drops whole monthly partitions; on a replicated table one node's
-- DROP PARTITION replicates to the others (no ON CLUSTER needed):
-- ALTER TABLE keyfleet.access_events_local DROP PARTITION 202401;
