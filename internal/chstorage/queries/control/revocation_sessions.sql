-- A revocation's device-session layer, per credential: the newest state.
-- param: revocation_id String = 'rv1'
SELECT credential_id, argMax(status, version), argMax(error, version), argMax(attempts, version),
    argMax(done_ms, version)
FROM revocation_sessions WHERE revocation_id = {revocation_id:String} GROUP BY session_key, credential_id
