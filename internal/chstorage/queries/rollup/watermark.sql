-- The start (server time) of the rollup job's latest completed run.
-- param: name String = 'access_rollups'
SELECT max(watermark) FROM access_rollup_state WHERE name = {name:String}
