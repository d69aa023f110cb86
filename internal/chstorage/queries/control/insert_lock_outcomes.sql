-- A lock command keyfleet stopped re-sending (outcome gave_up).
-- param: command_id String = 'cmd1'
-- param: outcome String = 'gave_up'
-- param: type String = 'revoke'
-- param: vendor String = 'nuki'
-- param: lock_id String = 'n1'
-- param: credential_id String = 'c1'
-- param: revocation_id String = 'rv1'
-- param: attempts UInt32 = 9
-- param: error String = 'lock unreachable'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: outcome_ms Int64 = 1709615167123
INSERT INTO lock_command_outcomes (command_id, outcome, type, vendor, lock_id, credential_id, revocation_id, attempts,
    error, ts, outcome_ms)
VALUES ({command_id:String}, {outcome:String}, {type:String}, {vendor:String}, {lock_id:String}, {credential_id:String},
    {revocation_id:String}, {attempts:UInt32}, {error:String}, {ts:DateTime}, {outcome_ms:Int64})
