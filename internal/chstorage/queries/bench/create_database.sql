-- A comparison round's database (dropped with the run's).
-- param: database Identifier = kfcheck_dropped
CREATE DATABASE IF NOT EXISTS {database:Identifier}
