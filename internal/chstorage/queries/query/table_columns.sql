-- The columns a table has (the timeline shows credential_events' columns
-- that exist).
-- param: table String = 'credential_events'
SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}
