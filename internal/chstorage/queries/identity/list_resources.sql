-- The newest versions of a type's resources that are not deleted, oldest
-- first; optionally only those whose newest version has a user name,
-- external id, display name (lower-cased where case-insensitive), member,
-- or one of some subject ids. The inner IN narrows the scan to resources
-- that ever had the value; the outer filter checks the newest version.
-- param: type String = 'User'
-- param: user_name String = 'alice@example.com'
-- param: external_id String = 'e1'
-- param: display_name String = 'staff'
-- param: member String = 'u1'
-- param: subjects Set(String) = ['s1', 's2']
SELECT id, v, c_ms, m_ms, d FROM (
    SELECT id, max(version) AS v, argMax(deleted, version) AS del, argMax(created_ms, version) AS c_ms,
        argMax(modified_ms, version) AS m_ms, argMax(doc, version) AS d, argMax(user_name, version) AS un,
        argMax(external_id, version) AS ext, argMax(display_name, version) AS dn, argMax(members, version) AS mem,
        argMax(subject_id, version) AS subj
    FROM identity_resources WHERE type = {type:String}
    /*if user_name*/ AND id IN (SELECT id FROM identity_resources WHERE type = {type:String} AND user_name = {user_name:String}) /*end*/
    /*if external_id*/ AND id IN (SELECT id FROM identity_resources WHERE type = {type:String} AND external_id = {external_id:String}) /*end*/
    /*if display_name*/ AND id IN (SELECT id FROM identity_resources WHERE type = {type:String} AND display_name = {display_name:String}) /*end*/
    /*if member*/ AND id IN (SELECT id FROM identity_resources WHERE type = {type:String} AND has(members, {member:String})) /*end*/
    /*if subjects*/ AND id IN (SELECT id FROM identity_resources WHERE type = {type:String} AND subject_id IN {subjects:Set(String)}) /*end*/
    GROUP BY id
) WHERE del = 0
/*if user_name*/ AND un = {user_name:String} /*end*/
/*if external_id*/ AND ext = {external_id:String} /*end*/
/*if display_name*/ AND dn = {display_name:String} /*end*/
/*if member*/ AND has(mem, {member:String}) /*end*/
/*if subjects*/ AND subj IN {subjects:Set(String)} /*end*/
ORDER BY c_ms, id
