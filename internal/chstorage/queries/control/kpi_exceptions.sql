-- Live credentials at the end of a range and those requested in it, and of
-- each how many are exceptions (or break-glass).
-- param: live Set(String) = ['requested', 'active']
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT countIf(cur_state IN {live:Set(String)}), countIf(cur_state IN {live:Set(String)} AND exc),
    countIf(requested_in), countIf(requested_in AND exc)
FROM (
    SELECT credential_id, argMax(state, seq) AS cur_state,
        argMax(exception, seq) = 1 OR argMax(break_glass, seq) = 1 AS exc,
        max(op = 'request' AND ts_ms >= {from_ms:Int64}) AS requested_in
    FROM credential_events WHERE ts_ms < {to_ms:Int64} GROUP BY credential_id
)
