-- Stores the staged versions of applied writes (inside ClickHouse: the
-- owner never reads the documents).
-- param: tokens Set(String) = ['t1', 't2']
INSERT INTO identity_resources (type, id, version, deleted, created_ms, modified_ms, subject_id, user_name,
    external_id, display_name, members, doc, token)
SELECT type, id, version, deleted, created_ms, modified_ms, subject_id, user_name, external_id, display_name,
    members, doc, token
FROM identity_staged WHERE token IN {tokens:Set(String)}
