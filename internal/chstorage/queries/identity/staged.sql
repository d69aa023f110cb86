-- The staged versions of some writes: what the owner checks unique keys
-- and versions with.
-- param: tokens Set(String) = ['t1', 't2']
SELECT token, type, id, version, user_name, external_id, subject_id
FROM identity_staged WHERE token IN {tokens:Set(String)}
