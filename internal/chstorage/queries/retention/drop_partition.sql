-- Drops one expired monthly partition (audited before it runs).
-- param: table Choice = access_events | access_events_by_subject | access_locations | access_identities | access_rollup_hourly | access_rollup_site_hourly | access_rollup_daily | access_rollup_subject_daily | dead_letters | credential_events | alerts | alert_index | alerts_open | access_rollup_dirty
-- param: partition String = '202301'
ALTER TABLE {table:Choice} DROP PARTITION ID {partition:String}
