-- One stored report's document.
-- param: report_id String = '2024-W10'
SELECT document FROM reports FINAL WHERE report_id = {report_id:String} LIMIT 1
