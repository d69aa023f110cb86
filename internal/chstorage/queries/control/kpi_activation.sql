-- Credentials issued in a range, and how many of them were activated with
-- verified attestation.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT count(), countIf(activated) FROM (
    SELECT credential_id, max(op = 'issue' AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}) AS issued_in,
        max(op = 'activate' AND attested = 1) AS activated
    FROM credential_events WHERE ts >= {from:DateTime} GROUP BY credential_id
) WHERE issued_in
