-- Merges running in a database (the harness waits for quiet before measuring).
-- param: database String = 'keyfleet'
SELECT count() FROM system.merges WHERE database = {database:String}
