-- The identity owner's decisions on some writes (a re-delivered batch).
-- param: tokens Set(String) = ['t1', 't2']
SELECT token, any(outcome), any(detail) FROM identity_decisions WHERE token IN {tokens:Set(String)} GROUP BY token
