-- A campaign, or a new version of it (closed).
-- param: campaign_id String = 'rc1'
-- param: site_id String = 's1'
-- param: created_ms Int64 = 1709528767000
-- param: deadline_ms Int64 = 1710133567000
-- param: created_by String = 'manager-1'
-- param: on_deadline String = 'suspend'
-- param: closed_ms Int64 = 0
-- param: version UInt64 = 1
INSERT INTO recert_campaigns (campaign_id, site_id, created_ms, deadline_ms, created_by, on_deadline, closed_ms, version)
VALUES ({campaign_id:String}, {site_id:String}, {created_ms:Int64}, {deadline_ms:Int64}, {created_by:String}, {on_deadline:String}, {closed_ms:Int64}, {version:UInt64})
