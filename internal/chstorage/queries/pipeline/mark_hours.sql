-- Marks the hours a stored batch touched for the rollup job, stamped with
-- the server's clock (the job's watermark is server time).
-- param: hours Array(Int64) = [1709528400000, 1709532000000]
INSERT INTO access_rollup_dirty (hour_ms, marked)
SELECT arrayJoin({hours:Array(Int64)}) AS hour_ms, now()
