-- A review of a break-glass credential; the highest version wins.
-- param: credential_id String = 'c1'
-- param: status String = 'applied'
-- param: outcome String = 'justified'
-- param: reviewer String = 'mgr2'
-- param: note String = 'fire alarm'
-- param: updated_ms Int64 = 1709528767123
-- param: version UInt64 = 1
INSERT INTO breakglass_reviews (credential_id, status, outcome, reviewer, note, updated_ms, version)
VALUES ({credential_id:String}, {status:String}, {outcome:String}, {reviewer:String}, {note:String},
    {updated_ms:Int64}, {version:UInt64})
