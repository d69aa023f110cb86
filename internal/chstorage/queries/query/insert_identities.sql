-- Subjects' organisation references (an empty one erases).
-- param: subject_id String = 'sub1'
-- param: subject_ref String = 'hr-0042'
-- param: display_name String = 'A. Person'
-- param: updated_ms Int64 = 1709528767000
INSERT INTO subject_identities (subject_id, subject_ref, display_name, updated_ms)
VALUES ({subject_id:String}, {subject_ref:String}, {display_name:String}, {updated_ms:Int64})
