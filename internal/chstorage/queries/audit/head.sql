-- The head (last entry) of one chain.
-- param: chain String = 'main'
SELECT seq, hash FROM audit_log WHERE chain = {chain:String} ORDER BY seq DESC LIMIT 1
