-- A request item's status; an outcome outranks pending (version).
-- param: request_id String = 'rq1'
-- param: item UInt32 = 1
-- param: credential_id String = 'c1'
-- param: status String = 'applied'
-- param: error String = ''
-- param: detail String = ''
-- param: updated_ms Int64 = 1709528767123
-- param: version UInt64 = 1
INSERT INTO control_request_items (request_id, item, credential_id, status, error, detail, updated_ms, version)
VALUES ({request_id:String}, {item:UInt32}, {credential_id:String}, {status:String}, {error:String}, {detail:String},
    {updated_ms:Int64}, {version:UInt64})
