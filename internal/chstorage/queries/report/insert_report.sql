-- A generated weekly report (a later generation of the same id replaces it).
-- param: report_id String = '2024-W10'
-- param: week String = '2024-W10'
-- param: site String = ''
-- param: ts DateTime = '2024-03-11 06:00:00'
-- param: generated_ms Int64 = 1710136800000
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: trigger String = 'schedule'
-- param: document String = '{"report_id":"2024-W10"}'
-- param: version UInt64 = 1710136800000000
INSERT INTO reports (report_id, week, site, ts, generated_ms, from_ms, to_ms, trigger, document, version)
VALUES ({report_id:String}, {week:String}, {site:String}, {ts:DateTime}, {generated_ms:Int64}, {from_ms:Int64},
    {to_ms:Int64}, {trigger:String}, {document:String}, {version:UInt64})
