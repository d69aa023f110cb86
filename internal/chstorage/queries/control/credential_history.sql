-- A credential's records, oldest first.
-- param: credential_id String = 'c1'
SELECT seq, any(record) FROM credential_events WHERE credential_id = {credential_id:String}
GROUP BY seq ORDER BY seq LIMIT 10000
