-- Creates keyfleet's database (Open, when the server says it is missing).
-- param: database Identifier = kfcheck_created
CREATE DATABASE IF NOT EXISTS {database:Identifier}
