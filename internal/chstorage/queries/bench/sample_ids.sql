-- Up to 500 ids of one kind seen since a time, to query for.
-- param: column Choice = subject_id | door_id | site_id
-- param: since_ms Int64 = 1709442367000
SELECT {column:Choice} FROM access_events WHERE {column:Choice} != '' AND ts_ms >= {since_ms:Int64}
GROUP BY {column:Choice} ORDER BY {column:Choice} LIMIT 500
