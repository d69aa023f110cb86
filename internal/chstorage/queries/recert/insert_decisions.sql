-- Decisions on a campaign's items.
-- param: campaign_id String = 'rc1'
-- param: credential_id String = 'c1'
-- param: decision String = 'confirmed'
-- param: actor String = 'manager-1'
-- param: note String = 'still lives here'
-- param: ts_ms Int64 = 1709528767000
-- param: version UInt64 = 1
INSERT INTO recert_decisions (campaign_id, credential_id, decision, actor, note, ts_ms, version)
VALUES ({campaign_id:String}, {credential_id:String}, {decision:String}, {actor:String}, {note:String}, {ts_ms:Int64}, {version:UInt64})
