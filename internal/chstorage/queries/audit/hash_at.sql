-- The hash of one entry (compared with a checkpoint).
-- param: chain String = 'main'
-- param: seq UInt64 = 2
SELECT hash FROM audit_log WHERE chain = {chain:String} AND seq = {seq:UInt64} LIMIT 1
