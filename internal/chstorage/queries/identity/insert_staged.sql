-- A write's new version, staged for the owner's decision.
-- param: token String = 't1'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: type String = 'User'
-- param: id String = 'u1'
-- param: version UInt64 = 1
-- param: deleted UInt8 = 0
-- param: created_ms Int64 = 1709528767000
-- param: modified_ms Int64 = 1709528767000
-- param: subject_id String = 's1'
-- param: user_name String = 'alice@example.com'
-- param: external_id String = 'e1'
-- param: display_name String = ''
-- param: members Array(String) = []
-- param: doc String = '{"userName":"alice@example.com"}'
INSERT INTO identity_staged (token, ts, type, id, version, deleted, created_ms, modified_ms, subject_id, user_name,
    external_id, display_name, members, doc)
VALUES ({token:String}, {ts:DateTime}, {type:String}, {id:String}, {version:UInt64}, {deleted:UInt8},
    {created_ms:Int64}, {modified_ms:Int64}, {subject_id:String}, {user_name:String}, {external_id:String},
    {display_name:String}, {members:Array(String)}, {doc:String})
