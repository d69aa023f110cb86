-- The subjects of some credentials or devices (a credential/device filter
-- becomes a subject filter on the subject-ordered copy).
-- param: where Fragment = credential_id IN ('c1') AND device_id IN ('dev1', 'dev2')
-- param: limit UInt32 = 1001
SELECT DISTINCT subject_id FROM access_identities WHERE {where:Fragment} LIMIT {limit:UInt32}
