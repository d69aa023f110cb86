-- Whether a table of the current database has a column (the migration
-- runner's portable ADD COLUMN IF NOT EXISTS: 18.16 has no such clause).
-- param: table String = 'access_events'
-- param: column String = 'lock_model'
SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = {table:String} AND name = {column:String}
