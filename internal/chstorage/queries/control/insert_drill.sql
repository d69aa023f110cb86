-- A revocation drill's run (storing a run id again replaces it).
-- param: run_id String = 'drill-1'
-- param: scenario String = 'termination'
-- param: started_ms Int64 = 1709528767123
-- param: finished_ms Int64 = 1709528827123
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: actor String = 'manager-1'
-- param: subjects UInt32 = 20
-- param: credentials UInt32 = 20
-- param: revocations UInt32 = 20
-- param: locks UInt32 = 120
-- param: confirmed UInt32 = 120
-- param: stragglers UInt32 = 0
-- param: disable_p50_ms Int64 = 300
-- param: disable_p99_ms Int64 = 800
-- param: confirm_p50_ms Int64 = 900
-- param: confirm_p99_ms Int64 = 4200
-- param: session_state String = 'done'
-- param: ticket_close_ms Int64 = -1
-- param: report String = '{}'
INSERT INTO drill_runs (run_id, scenario, started_ms, finished_ms, ts, actor, subjects, credentials, revocations, locks,
    confirmed, stragglers, disable_p50_ms, disable_p99_ms, confirm_p50_ms, confirm_p99_ms, session_state,
    ticket_close_ms, report)
VALUES ({run_id:String}, {scenario:String}, {started_ms:Int64}, {finished_ms:Int64}, {ts:DateTime}, {actor:String},
    {subjects:UInt32}, {credentials:UInt32}, {revocations:UInt32}, {locks:UInt32}, {confirmed:UInt32},
    {stragglers:UInt32}, {disable_p50_ms:Int64}, {disable_p99_ms:Int64}, {confirm_p50_ms:Int64}, {confirm_p99_ms:Int64},
    {session_state:String}, {ticket_close_ms:Int64}, {report:String})
