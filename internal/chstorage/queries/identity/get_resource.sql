-- The newest version of one SCIM resource, unless it is deleted.
-- param: type String = 'User'
-- param: id String = 'u1'
SELECT id, v, c_ms, m_ms, d FROM (
    SELECT id, max(version) AS v, argMax(deleted, version) AS del, argMax(created_ms, version) AS c_ms,
        argMax(modified_ms, version) AS m_ms, argMax(doc, version) AS d
    FROM identity_resources WHERE type = {type:String} AND id = {id:String} GROUP BY id
) WHERE del = 0
