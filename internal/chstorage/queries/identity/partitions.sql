-- The active partitions of a staging table (daily: YYYYMMDD).
-- param: table String = 'identity_staged'
SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() AND table = {table:String} AND active
ORDER BY partition_id
