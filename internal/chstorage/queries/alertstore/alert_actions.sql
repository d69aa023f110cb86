-- An alert's responder actions, in time order.
-- param: alert_id String = 'a1'
SELECT action_id, rule, action, outcome, detail, credential_id, actor, reversal, ts_ms
FROM alert_actions FINAL WHERE alert_id = {alert_id:String} ORDER BY ts_ms, action_id
