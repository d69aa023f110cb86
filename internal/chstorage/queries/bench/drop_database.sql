-- Drops a benchmark run's database when the run ends.
-- param: database Identifier = kfcheck_dropped
DROP DATABASE IF EXISTS {database:Identifier}
