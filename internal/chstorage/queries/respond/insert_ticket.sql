-- The ticket a responder opens for an alert.
-- param: ticket_id String = 'tk1'
-- param: alert_id String = 'a1'
-- param: alert_ts DateTime = '2024-03-04 05:06:07'
-- param: detector String = 'unlock_burst'
-- param: severity String = 'high'
-- param: title String = 'unlock_burst (high) at s1'
-- param: body String = 'sub1 opened 14 doors in 10 minutes'
-- param: subject_id String = 'sub1'
-- param: credential_id String = 'c1'
-- param: door_id String = 'd1'
-- param: site_id String = 's1'
-- param: status String = 'open'
-- param: assignee String = ''
-- param: created_ms Int64 = 1709528767000
-- param: updated_ms Int64 = 1709528767000
-- param: version UInt64 = 1709528767000000
INSERT INTO alert_tickets (ticket_id, alert_id, alert_ts, detector, severity, title, body, subject_id,
    credential_id, door_id, site_id, status, assignee, created_ms, updated_ms, version)
VALUES ({ticket_id:String}, {alert_id:String}, {alert_ts:DateTime}, {detector:String}, {severity:String},
    {title:String}, {body:String}, {subject_id:String}, {credential_id:String}, {door_id:String},
    {site_id:String}, {status:String}, {assignee:String}, {created_ms:Int64}, {updated_ms:Int64}, {version:UInt64})
