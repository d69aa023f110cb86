-- The open-alerts rows of the generated alerts (alertstore keeps them
-- beside every alert version).
INSERT INTO alerts_open (site_id, alert_id, ts, ts_ms, detector, severity, version, sign)
SELECT site_id, alert_id, ts, ts_ms, detector, severity, version, 1 FROM alerts FINAL WHERE status = 'open'
