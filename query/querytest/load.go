// Package querytest loads realistic access events into ClickHouse quickly
// (INSERT ... SELECT FROM numbers(), generated on the server) for the query
// API's integration tests and benchmarks.
package querytest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Fleet describes the generated data set.
type Fleet struct {
	Events   uint64        // how many events
	Offset   uint64        // first generator number (a second load with another offset adds new events)
	Seed     uint64        // varies the events of the same numbers
	Start    time.Time     // events are spread over [Start, Start+Span)
	Span     time.Duration //
	Subjects uint64        // distinct subjects (default 2000)
	Sites    uint64        // distinct sites (default 10)
	Doors    uint64        // doors per site (default 20)
}

func (f *Fleet) defaults() {
	if f.Subjects == 0 {
		f.Subjects = 2000
	}
	if f.Sites == 0 {
		f.Sites = 10
	}
	if f.Doors == 0 {
		f.Doors = 20
	}
	if f.Span <= 0 {
		f.Span = 7 * 24 * time.Hour
	}
}

// Site, Door, Lock and Subject name the generated entities.
func Site(i uint64) string       { return fmt.Sprintf("site-%d", i) }
func Door(site, i uint64) string { return fmt.Sprintf("door-%d-%d", site, i) }
func Subject(i uint64) string    { return fmt.Sprintf("subj-%d", i) }

// Load inserts the fleet's events into access_events. Most subjects stay at
// their home site; about 12% of events are locks, 5% denials with a reason,
// 15% door sensor and battery events without a subject, 5% jams.
func Load(ctx context.Context, conn driver.Conn, f Fleet) error {
	f.defaults()
	q := `INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
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
    {start} + (cityHash64(number, {seed}, 1) % {span}) AS t,
    cityHash64(number, {seed}, 2) % {subjects} AS subj,
    if(cityHash64(number, {seed}, 3) % 10 = 0, cityHash64(number, {seed}, 4) % {sites}, subj % {sites}) AS site,
    cityHash64(number, {seed}, 5) % {doors} AS door,
    cityHash64(number, {seed}, 6) AS r,
    arrayElement(['unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock','unlock',
      'lock','lock','lock','access_denied','door_opened','door_closed','battery_low','lock_jammed'],
      (cityHash64(number, {seed}, 7) % 20) + 1) AS act,
    act IN ('door_opened', 'door_closed', 'battery_low') AS nosubj
  FROM numbers({offset}, {n})
)`
	r := strings.NewReplacer("{start}", fmt.Sprint(f.Start.UnixMilli()), "{span}", fmt.Sprint(f.Span.Milliseconds()),
		"{seed}", fmt.Sprint(f.Seed), "{subjects}", fmt.Sprint(f.Subjects), "{sites}", fmt.Sprint(f.Sites),
		"{doors}", fmt.Sprint(f.Doors), "{offset}", fmt.Sprint(f.Offset), "{n}", fmt.Sprint(f.Events))
	if err := conn.Exec(ctx, r.Replace(q)); err != nil {
		return fmt.Errorf("load events: %w", err)
	}
	return nil
}

// Redeliver inserts again about one event in every `every` already stored
// (as an at-least-once pipeline does after a crash): duplicates that
// ReplacingMergeTree has not merged yet.
func Redeliver(ctx context.Context, conn driver.Conn, every uint64) error {
	q := fmt.Sprintf(`INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
    lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code,
    break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, inserted_ms
FROM access_events WHERE cityHash64(toString(event_id)) %% %d = 0 LIMIT 1 BY event_id`, every)
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("redeliver events: %w", err)
	}
	return nil
}
