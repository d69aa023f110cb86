-- Generates realistic access events on the server (INSERT ... SELECT FROM
-- numbers()) for the query API's tests and benchmarks (query/querytest).
-- param: start Int64 = 1709510400000
-- param: span Int64 = 604800000
-- param: seed UInt64 = 1
-- param: subjects UInt64 = 2000
-- param: sites UInt64 = 10
-- param: doors UInt64 = 20
-- param: offset UInt64 = 0
-- param: n UInt64 = 100
INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
    lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code,
    break_glass, raw_ref, inserted_ms)
SELECT generateUUIDv4(), toDateTime(intDiv(t, 1000)), t, t + 800,
  arrayElement(['matter','nuki','schlage','seam','legacy'], (site % 5) + 1),
  concat('site-', toString(site)), concat('zone-', toString(site), '-', toString(door % 5)),
  concat('door-', toString(site), '-', toString(door)), concat('lock-', toString(site), '-', toString(door)),
  if(nosubj, '', concat('subj-', toString(subj))),
  if(nosubj, '', concat('cred-', toString(subj), '-', toString(r % 2))),
  if(nosubj, '', concat('dev-', toString(subj))),
  arrayElement(['attested','attested','attested','unattested','unknown'], (r % 5) + 1),
  act,
  multiIf(act = 'access_denied', 'denied', nosubj, 'info', act = 'lock_jammed', 'error', 'granted'),
  multiIf(nosubj OR act = 'lock_jammed', 'unknown',
    arrayElement(['phone_nfc','phone_ble','aliro','wallet','app_remote','pin','card'], (intDiv(r, 7) % 7) + 1)),
  multiIf(act = 'access_denied', arrayElement(['invalid_credential','revoked','expired','outside_schedule'], (intDiv(r, 3) % 4) + 1),
    act = 'lock_jammed', 'jammed', ''),
  concat('code-', toString(r % 13)), toUInt8(r % 97 = 0 AND NOT nosubj), concat('lock.events.raw/', toString(r % 4), '/', toString(number)),
  toInt64(toUnixTimestamp(now())) * 1000
FROM (
  SELECT number,
    {start:Int64} + (cityHash64(number, {seed:UInt64}, 1) % {span:Int64}) AS t,
    cityHash64(number, {seed:UInt64}, 2) % {subjects:UInt64} AS subj,
    if(cityHash64(number, {seed:UInt64}, 3) % 10 = 0, cityHash64(number, {seed:UInt64}, 4) % {sites:UInt64}, subj % {sites:UInt64}) AS site,
    cityHash64(number, {seed:UInt64}, 5) % {doors:UInt64} AS door,
    cityHash64(number, {seed:UInt64}, 6) AS r,
    arrayElement(['unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock',
      'lock','lock','lock','access_denied','door_opened','door_closed','battery_low','lock_jammed'],
      (cityHash64(number, {seed:UInt64}, 7) % 20) + 1) AS act,
    act IN ('door_opened', 'door_closed', 'battery_low') AS nosubj
  FROM numbers({offset:UInt64}, {n:UInt64})
)
