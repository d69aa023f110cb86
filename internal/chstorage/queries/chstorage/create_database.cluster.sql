-- Cluster mode: creates keyfleet's database on every node.
-- param: database Identifier = kfcheck_created
-- param: cluster Identifier = keyfleet
CREATE DATABASE IF NOT EXISTS {database:Identifier} ON CLUSTER {cluster:Identifier}
