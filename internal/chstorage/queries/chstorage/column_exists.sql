-- Whether a table of the current database has a column (the migration
-- runner's portable ADD COLUMN IF NOT EXISTS: 18.16 has no such clause).
-- ('' database: the current one).
-- param: database String = ''
-- param: table String = 'access_events'
-- param: column String = 'lock_model'
SELECT count() FROM system.columns
WHERE database = if({database:String} = '', currentDatabase(), {database:String}) AND table = {table:String} AND name = {column:String}
