-- An alert's responder actions already recorded (not failed), by any instance.
-- param: alert_id String = 'a1'
SELECT action_id FROM alert_actions FINAL WHERE alert_id = {alert_id:String} AND outcome != 'failed'
