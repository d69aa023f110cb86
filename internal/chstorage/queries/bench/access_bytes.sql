-- Bytes on disk of every table holding access events or what is derived
-- from them (the scaling benchmark's bytes per event).
SELECT sum(bytes_on_disk) FROM system.parts
WHERE database = currentDatabase() AND active AND table LIKE 'access%'
