-- The dead_letters writer's insert (DeadLetterRows): the DLQ topic mirrored.
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: vendor String = 'seam'
-- param: reason String = 'malformed'
-- param: error String = 'unexpected end of JSON input'
-- param: source String = 'lock.events.raw/0/7'
-- param: payload_size UInt32 = 17
-- param: payload_sha256 String = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
INSERT INTO dead_letters (ts, ts_ms, vendor, reason, error, source, payload_size, payload_sha256)
VALUES ({ts:DateTime}, {ts_ms:Int64}, {vendor:String}, {reason:String}, {error:String}, {source:String},
    {payload_size:UInt32}, {payload_sha256:String})
