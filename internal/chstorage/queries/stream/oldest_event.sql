-- The oldest stored access event's time (how far back last uses can be known).
SELECT toInt64(min(ts_ms)) FROM access_events
