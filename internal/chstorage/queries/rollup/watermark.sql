-- The start (server time) of the rollup job's latest completed run that
-- vouches for a set of rollups: under its own name or the name that vouches
-- for every rollup table (also).
-- param: name String = 'access_rollups_hours'
-- param: also String = 'access_rollups_0170'
SELECT max(watermark) FROM access_rollup_state WHERE name = {name:String} OR name = {also:String}
