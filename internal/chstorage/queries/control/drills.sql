-- Drill runs started in a range, newest first (optionally of one scenario,
-- or one run with its report).
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: scenario String = 'termination'
-- param: run_id String = 'drill-1'
-- param: with_report Bool = true
-- param: limit UInt32 = 100
SELECT run_id, argMax(scenario, finished_ms), min(started_ms), max(finished_ms),
    argMax(actor, finished_ms), argMax(subjects, finished_ms), argMax(credentials, finished_ms),
    argMax(revocations, finished_ms), argMax(locks, finished_ms), argMax(confirmed, finished_ms),
    argMax(stragglers, finished_ms), argMax(disable_p50_ms, finished_ms), argMax(disable_p99_ms, finished_ms),
    argMax(confirm_p50_ms, finished_ms), argMax(confirm_p99_ms, finished_ms), argMax(session_state, finished_ms),
    argMax(ticket_close_ms, finished_ms), /*if with_report*/ argMax(report, finished_ms) /*else*/ '' /*end*/
FROM drill_runs
WHERE ts >= {from:DateTime} AND started_ms >= {from_ms:Int64} AND started_ms < {to_ms:Int64}
/*if scenario*/ AND scenario = {scenario:String} /*end*/
/*if run_id*/ AND run_id = {run_id:String} /*end*/
GROUP BY run_id ORDER BY min(started_ms) DESC, run_id LIMIT {limit:UInt32}
