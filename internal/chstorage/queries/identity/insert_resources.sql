-- Versions of resources the owner writes itself: deletions (tombstones).
-- param: type String = 'User'
-- param: id String = 'u1'
-- param: version UInt64 = 2
-- param: deleted UInt8 = 1
-- param: created_ms Int64 = 1709528767000
-- param: modified_ms Int64 = 1709528767000
-- param: subject_id String = ''
-- param: user_name String = ''
-- param: external_id String = ''
-- param: display_name String = ''
-- param: members Array(String) = []
-- param: doc String = ''
-- param: token String = 't2'
INSERT INTO identity_resources (type, id, version, deleted, created_ms, modified_ms, subject_id, user_name,
    external_id, display_name, members, doc, token)
VALUES ({type:String}, {id:String}, {version:UInt64}, {deleted:UInt8}, {created_ms:Int64}, {modified_ms:Int64},
    {subject_id:String}, {user_name:String}, {external_id:String}, {display_name:String}, {members:Array(String)},
    {doc:String}, {token:String})
