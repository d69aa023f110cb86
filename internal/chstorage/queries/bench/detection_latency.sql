-- Produce-to-alert delay of each alert's first revision, by detector.
-- param: from_ms Int64 = 1709528700000
-- param: to_ms Int64 = 1709528800000
SELECT detector, toFloat64(detected_ms - source_received_ms) FROM alerts FINAL
WHERE revision = 0 AND source_received_ms >= {from_ms:Int64} AND source_received_ms <= {to_ms:Int64}
