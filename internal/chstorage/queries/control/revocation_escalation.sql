-- When a revocation was escalated past the SLA, and its alert (no row when
-- it was not).
-- param: revocation_id String = 'rv1'
SELECT min(escalated_ms), any(alert_id) FROM revocation_escalations WHERE revocation_id = {revocation_id:String}
HAVING count() > 0
