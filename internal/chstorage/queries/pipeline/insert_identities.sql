-- New credential/device → subject lookup keys of a stored batch (pipeline.Derived).
-- param: month DateTime = '2024-03-01 00:00:00'
-- param: credential_id String = 'c1'
-- param: device_id String = 'dev1'
-- param: subject_id String = 'sub1'
-- param: last_ms Int64 = 1709528767123
INSERT INTO access_identities (month, credential_id, device_id, subject_id, last_ms)
VALUES ({month:DateTime}, {credential_id:String}, {device_id:String}, {subject_id:String}, {last_ms:Int64})
