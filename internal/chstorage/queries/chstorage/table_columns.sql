-- The columns of a table of the current database (a migration's
-- ADD COLUMN IF NOT EXISTS, DROP/MODIFY COLUMN IF EXISTS, on the server or on
-- a replica of each shard in cluster mode; 18.16 knows neither clause).
-- param: table String = 'access_events'
SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}
