-- Rows stored since serve started: count, the 5th and 95th percentile and the
-- first and last insert times (the throughput window).
-- param: since_ms Int64 = 1709528700000
SELECT count(), quantileExact(0.05)(toFloat64(inserted_ms)), quantileExact(0.95)(toFloat64(inserted_ms)),
    toFloat64(min(inserted_ms)), toFloat64(max(inserted_ms))
FROM access_events WHERE inserted_ms >= {since_ms:Int64}
