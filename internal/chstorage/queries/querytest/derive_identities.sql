-- The credential/device → subject lookup rows of the events loaded since a time.
-- param: since_ms Int64 = 1709510400000
INSERT INTO access_identities (month, credential_id, device_id, subject_id, last_ms)
SELECT toDateTime(toStartOfMonth(ts)) AS m, credential_id, device_id, subject_id, max(ts_ms)
FROM access_events WHERE inserted_ms >= {since_ms:Int64} AND (credential_id != '' OR device_id != '')
GROUP BY m, credential_id, device_id, subject_id
