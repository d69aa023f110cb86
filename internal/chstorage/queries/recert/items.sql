-- A campaign's items with their newest decision (empty: none yet).
-- param: campaign_id String = 'rc1'
SELECT i.credential_id, i.subject_id, i.role, i.state, i.door_groups,
    d.decision, d.actor, d.note, d.ts_ms
FROM (SELECT * FROM recert_items FINAL WHERE campaign_id = {campaign_id:String}) AS i
ANY LEFT JOIN (
    SELECT credential_id, decision, actor, note, ts_ms
    FROM recert_decisions FINAL WHERE campaign_id = {campaign_id:String}
) AS d USING (credential_id)
ORDER BY i.credential_id
