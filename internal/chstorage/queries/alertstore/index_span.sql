-- The event-time span of some alerts (from the narrow index, by site when
-- the sites are known), to bound the read of their full rows.
-- param: ids Set(String) = ['a1', 'a2']
-- param: sites Set(String) = ['s1']
SELECT min(ts), max(ts), count() FROM alert_index
WHERE /*if sites*/ site_id IN {sites:Set(String)} AND /*end*/ alert_id IN {ids:Set(String)}
