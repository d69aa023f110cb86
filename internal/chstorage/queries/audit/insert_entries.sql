-- Audit entries, chained after the chain's head, in one insert.
-- param: chain String = 'main'
-- param: seq UInt64 = 2
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: actor String = 'token:t1'
-- param: action String = 'export.events'
-- param: target String = 'sub1'
-- param: details String = '{"format":"csv"}'
-- param: prev_hash String = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
-- param: hash String = '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae'
INSERT INTO audit_log (chain, seq, ts, ts_ms, actor, action, target, details, prev_hash, hash)
VALUES ({chain:String}, {seq:UInt64}, {ts:DateTime}, {ts_ms:Int64}, {actor:String}, {action:String},
    {target:String}, {details:String}, {prev_hash:String}, {hash:String})
