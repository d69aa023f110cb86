-- The identity owner's decision on one write, if it has made it.
-- param: token String = 't1'
SELECT outcome, detail FROM identity_decisions WHERE token = {token:String} LIMIT 1
