-- The owner's decisions on writes.
-- param: token String = 't1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: outcome String = 'applied'
-- param: detail String = ''
-- param: decided_ms Int64 = 1709528767000
INSERT INTO identity_decisions (token, ts, outcome, detail, decided_ms)
VALUES ({token:String}, {ts:DateTime}, {outcome:String}, {detail:String}, {decided_ms:Int64})
