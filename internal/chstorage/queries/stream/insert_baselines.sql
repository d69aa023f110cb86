-- Detector baselines, saved periodically.
-- param: subject_id String = 'sub1'
-- param: role String = 'resident'
-- param: state String = '{"subject_id":"sub1","daily":[3,4]}'
-- param: updated_ms Int64 = 1709528767000
INSERT INTO detect_baselines (subject_id, role, state, updated_ms)
VALUES ({subject_id:String}, {role:String}, {state:String}, {updated_ms:Int64})
