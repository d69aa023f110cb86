-- A table's active partitions with their rows and bytes, oldest first.
-- param: table String = 'access_events'
SELECT partition_id, sum(rows), sum(bytes_on_disk) FROM system.parts
WHERE database = currentDatabase() AND table = {table:String} AND active
GROUP BY partition_id ORDER BY partition_id
