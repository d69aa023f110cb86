-- Whether a report id is stored.
-- param: report_id String = '2024-W10'
SELECT count() FROM reports WHERE report_id = {report_id:String}
