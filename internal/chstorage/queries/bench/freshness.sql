-- Produce-to-insert delay of each event received in a window.
-- param: from_ms Int64 = 1709528700000
-- param: to_ms Int64 = 1709528800000
SELECT toFloat64(inserted_ms - received_ms) FROM access_events
WHERE received_ms >= {from_ms:Int64} AND received_ms <= {to_ms:Int64}
