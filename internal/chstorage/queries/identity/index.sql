-- Every resource's newest version and unique keys: the identity owner's
-- index, loaded when it starts deciding.
SELECT type, id, max(version), argMax(deleted, version), argMax(token, version), argMax(user_name, version),
    argMax(external_id, version), argMax(subject_id, version)
FROM identity_resources GROUP BY type, id
