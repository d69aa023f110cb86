-- Rows of the summary rollups (the scaling benchmark: how much coarser they are than the events).
-- access_rollup_hourly is no longer written (0170) but counted while it holds rows.
SELECT (SELECT count() FROM access_rollup_hourly) + (SELECT count() FROM access_rollup_site_hourly)
    + (SELECT count() FROM access_rollup_daily) + (SELECT count() FROM access_rollup_subject_daily)
