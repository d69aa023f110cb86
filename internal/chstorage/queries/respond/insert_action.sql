-- What a responder did (or would have done, in dry-run) for an alert.
-- param: action_id String = 'a1/suspend'
-- param: alert_id String = 'a1'
-- param: alert_ts DateTime = '2024-03-04 05:06:07'
-- param: rule String = 'suspend-on-burst'
-- param: action String = 'suspend'
-- param: outcome String = 'done'
-- param: detail String = 'credential c1 suspended'
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: credential_id String = 'c1'
-- param: site_id String = 's1'
-- param: actor String = 'responder:suspend-on-burst'
-- param: reversal String = 'POST /v1/credentials/c1/resume'
-- param: ts_ms Int64 = 1709528767500
-- param: version UInt64 = 1709528767500000
INSERT INTO alert_actions (action_id, alert_id, alert_ts, rule, action, outcome, detail, detector, severity,
    credential_id, site_id, actor, reversal, ts_ms, version)
VALUES ({action_id:String}, {alert_id:String}, {alert_ts:DateTime}, {rule:String}, {action:String},
    {outcome:String}, {detail:String}, {detector:String}, {severity:String}, {credential_id:String},
    {site_id:String}, {actor:String}, {reversal:String}, {ts_ms:Int64}, {version:UInt64})
