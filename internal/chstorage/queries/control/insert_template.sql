-- A version of a role template.
-- param: role String = 'resident'
-- param: version UInt64 = 1
-- param: template String = '{}'
-- param: updated_ms Int64 = 1709528767123
-- param: updated_by String = 'admin'
INSERT INTO control_templates (role, version, template, updated_ms, updated_by)
VALUES ({role:String}, {version:UInt64}, {template:String}, {updated_ms:Int64}, {updated_by:String})
