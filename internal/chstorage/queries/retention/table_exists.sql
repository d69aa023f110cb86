-- Whether a table exists in keyfleet's database.
-- param: table String = 'access_events'
SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {table:String}
