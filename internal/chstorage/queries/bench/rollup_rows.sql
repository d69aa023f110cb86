-- Rows of the summary rollups (the scaling benchmark: how much coarser they are than the events).
SELECT (SELECT count() FROM access_rollup_hourly) + (SELECT count() FROM access_rollup_subject_daily)
