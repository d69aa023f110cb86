-- The leaver latency over leavers whose identity change is in
-- [from_ms, to_ms): per leaver, the change to the last lock confirming the
-- revocation of its credentials (a credential no lock held: its entitlement
-- record), as control's revocation latency counts a credential; confirmed
-- once every credential of its revocation(s) is. Resyncs are left out.
-- since bounds the partitions read (a day before from_ms).
-- param: since DateTime = '2024-03-03 00:00:00'
-- param: from_ms Int64 = 1709424000000
-- param: to_ms Int64 = 1709596800000
SELECT count(), countIf(done), quantilesExactIf(0.5, 0.95, 0.99)(latency_ms, done)
FROM (
    SELECT subject_id, change_ms, min(rv_done) AS done, toFloat64(max(rv_last) - change_ms) AS latency_ms
    FROM (
        SELECT subject_id, change_ms, revocation_id FROM identity_leavers
        WHERE ts >= {since:DateTime} AND change_ms >= {from_ms:Int64} AND change_ms < {to_ms:Int64}
            AND reason != 'resync' AND revocation_id != ''
        GROUP BY subject_id, change_ms, revocation_id
    ) AS l ANY LEFT JOIN (
        SELECT revocation_id, min(done) AS rv_done, max(last_ms) AS rv_last
        FROM (
            SELECT revocation_id, (n_locks = 0 AND dis_ms > 0) OR (n_locks > 0 AND acked >= n_locks) AS done,
                if(n_locks = 0, dis_ms, greatest(last_applied, dis_ms)) AS last_ms
            FROM (
                SELECT revocation_id, credential_id, max(locks_total) AS n_locks, max(disabled_ms) AS dis_ms
                FROM revocations WHERE ts >= {since:DateTime}
                GROUP BY revocation_id, credential_id
            ) AS r ANY LEFT JOIN (
                SELECT revocation_id, credential_id, uniqExact(vendor, lock_id) AS acked, max(applied_ms) AS last_applied
                FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {since:DateTime}
                GROUP BY revocation_id, credential_id
            ) AS a USING (revocation_id, credential_id)
        )
        GROUP BY revocation_id
    ) AS rv USING (revocation_id)
    GROUP BY subject_id, change_ms
)
