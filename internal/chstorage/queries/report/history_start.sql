-- When the stored access history begins: the oldest second of the active
-- access_events parts (part metadata, not the events), and how many parts.
SELECT toUInt32(min(min_time)), count() FROM system.parts
WHERE database = currentDatabase() AND table = 'access_events' AND active AND rows > 0
