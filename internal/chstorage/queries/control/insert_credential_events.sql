-- A credential record (the credential.events writer: one native block per batch).
-- param: credential_id String = 'c1'
-- param: seq UInt64 = 1
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: op String = 'issue'
-- param: state String = 'active'
-- param: prev_state String = 'pending_activation'
-- param: subject_id String = 's1'
-- param: role String = 'resident'
-- param: site_id String = 'site-a'
-- param: device_id String = 'd1'
-- param: attested UInt8 = 1
-- param: break_glass UInt8 = 1
-- param: exception UInt8 = 1
-- param: door_groups Array(String) = ['a', 'b']
-- param: valid_from_ms Int64 = 1709528767123
-- param: valid_until_ms Int64 = 1709528767123
-- param: issuer String = 'mgr1'
-- param: approvers Array(String) = ['a', 'b']
-- param: approval_rule String = 'auto'
-- param: reason String = 'move-out'
-- param: actor String = 'mgr1'
-- param: request_id String = 'rq1'
-- param: command_id String = 'cmd1'
-- param: revocation_id String = 'rv1'
-- param: requested_ms Int64 = 1709528767123
-- param: issued_ms Int64 = 1709528767123
-- param: lock_count UInt32 = 1
-- param: phone_model String = 'Pixel 9'
-- param: os_name String = 'android'
-- param: os_version String = '15'
-- param: os_patch_level String = '2026-01'
-- param: app_version String = '2026.11.1'
-- param: device_facts String = 'attested'
-- param: record String = '{}'
-- param: inserted_ms Int64 = 1709528767123
INSERT INTO credential_events (credential_id, seq, ts, ts_ms, op, state, prev_state, subject_id, role, site_id,
    device_id, attested, break_glass, exception, door_groups, valid_from_ms, valid_until_ms, issuer, approvers,
    approval_rule, reason, actor, request_id, command_id, revocation_id, requested_ms, issued_ms, lock_count,
    phone_model, os_name, os_version, os_patch_level, app_version, device_facts, record, inserted_ms)
VALUES ({credential_id:String}, {seq:UInt64}, {ts:DateTime}, {ts_ms:Int64}, {op:String}, {state:String},
    {prev_state:String}, {subject_id:String}, {role:String}, {site_id:String}, {device_id:String}, {attested:UInt8},
    {break_glass:UInt8}, {exception:UInt8}, {door_groups:Array(String)}, {valid_from_ms:Int64}, {valid_until_ms:Int64},
    {issuer:String}, {approvers:Array(String)}, {approval_rule:String}, {reason:String}, {actor:String},
    {request_id:String}, {command_id:String}, {revocation_id:String}, {requested_ms:Int64}, {issued_ms:Int64},
    {lock_count:UInt32},
    {phone_model:String}, {os_name:String}, {os_version:String}, {os_patch_level:String}, {app_version:String},
    {device_facts:String}, {record:String}, {inserted_ms:Int64})
