-- The index rows of the generated alerts (alertstore writes them beside
-- every alert version).
INSERT INTO alert_index (site_id, alert_id, ts, ts_ms, detector, severity, status, version)
SELECT site_id, alert_id, ts, ts_ms, detector, severity, status, version FROM alerts
