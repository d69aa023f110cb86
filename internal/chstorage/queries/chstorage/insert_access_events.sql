-- The access_events writer's insert (AccessRows, one native block per batch).
-- param: event_id UUID = '6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767123
-- param: received_ms Int64 = 1709528767500
-- param: vendor String = 'nuki'
-- param: site_id String = 's1'
-- param: zone_id String = 'z1'
-- param: door_id String = 'd1'
-- param: lock_id String = 'l1'
-- param: subject_id String = 'sub1'
-- param: credential_id String = 'c1'
-- param: device_id String = 'dev1'
-- param: attested String = 'attested'
-- param: action String = 'unlock'
-- param: outcome String = 'granted'
-- param: method String = 'phone_ble'
-- param: reason String = ''
-- param: vendor_code String = 'action=1'
-- param: break_glass UInt8 = 0
-- param: raw_ref String = 'lock.events.raw/0/42'
-- param: inserted_ms Int64 = 1709528768000
INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id,
    subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms)
VALUES ({event_id:UUID}, {ts:DateTime}, {ts_ms:Int64}, {received_ms:Int64}, {vendor:String}, {site_id:String},
    {zone_id:String}, {door_id:String}, {lock_id:String}, {subject_id:String}, {credential_id:String},
    {device_id:String}, {attested:String}, {action:String}, {outcome:String}, {method:String}, {reason:String},
    {vendor_code:String}, {break_glass:UInt8}, {raw_ref:String}, {inserted_ms:Int64})
