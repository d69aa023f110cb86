-- Drops a staging table's day older than two days.
-- param: table Choice = identity_staged | identity_decisions
-- param: partition String = '20240301'
ALTER TABLE {table:Choice} DROP PARTITION ID {partition:String}
