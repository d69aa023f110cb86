-- A token, or a new version of it (revoked).
-- param: id String = 't1'
-- param: name String = 'ops'
-- param: role String = 'admin'
-- param: hash String = '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae'
-- param: created_ms Int64 = 1709528767000
-- param: revoked_ms Int64 = 0
-- param: expires_ms Int64 = 0
-- param: version UInt64 = 1
INSERT INTO api_tokens_v2 (id, name, role, hash, created_ms, revoked_ms, expires_ms, version)
VALUES ({id:String}, {name:String}, {role:String}, {hash:String}, {created_ms:Int64}, {revoked_ms:Int64}, {expires_ms:Int64}, {version:UInt64})
