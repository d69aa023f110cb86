-- The newest stored event's time (query ids are sampled from the day before).
SELECT max(ts_ms) FROM access_events
