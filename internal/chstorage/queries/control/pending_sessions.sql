-- Device-session revocations requested since a time that are still pending.
-- param: from DateTime = '2024-03-04 05:06:07'
SELECT session_key, any(revocation_id), any(credential_id), any(subject_id), any(device_id), any(scope), any(reason),
    min(requested_ms), argMax(status, version), argMax(attempts, version)
FROM revocation_sessions WHERE ts >= {from:DateTime}
GROUP BY session_key HAVING argMax(status, version) = 'pending'
