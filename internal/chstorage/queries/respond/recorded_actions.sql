-- Some alerts' responder actions already recorded (not failed), by any
-- instance: one query per batch of alerts.
-- param: alert_ids Set(String) = ['a1', 'a2']
SELECT action_id FROM alert_actions FINAL WHERE alert_id IN {alert_ids:Set(String)} AND outcome != 'failed'
