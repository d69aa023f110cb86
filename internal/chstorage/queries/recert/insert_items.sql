-- The credentials a campaign reviews.
-- param: campaign_id String = 'rc1'
-- param: credential_id String = 'c1'
-- param: subject_id String = 'sub1'
-- param: role String = 'resident'
-- param: state String = 'active'
-- param: door_groups Array(String) = ['entrance']
INSERT INTO recert_items (campaign_id, credential_id, subject_id, role, state, door_groups)
VALUES ({campaign_id:String}, {credential_id:String}, {subject_id:String}, {role:String}, {state:String}, {door_groups:Array(String)})
