// Package querytest loads realistic access events into ClickHouse quickly
// (INSERT ... SELECT FROM numbers(), generated on the server) for the query
// API's integration tests and benchmarks.
package querytest

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	loadEventsSQL      = chstorage.Query("querytest/load_events")
	redeliverEventsSQL = chstorage.Query("querytest/redeliver_events")
	redeliverCopySQL   = chstorage.Query("querytest/redeliver_events_by_subject")
	serverNowSQL       = chstorage.Query("querytest/server_now_ms")
	// What the writer (pipeline.Derived) adds beside each stored batch.
	deriveSQL = []*chstorage.Statement{
		chstorage.Query("querytest/derive_by_subject"),
		chstorage.Query("querytest/derive_locations"),
		chstorage.Query("querytest/derive_identities"),
		chstorage.Query("querytest/derive_dirty"),
	}
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

// Load inserts the fleet's events into access_events, then what the writer
// stores beside them (the subject-ordered copy, the lookups, the rollup's
// dirty marks). Most subjects stay at their home site; about 12% of events
// are locks, 5% denials with a reason, 15% door sensor and battery events
// without a subject, 5% jams. Loads must not run concurrently with each
// other (the derived rows are those of events inserted since the load began).
func Load(ctx context.Context, conn driver.Conn, f Fleet) error {
	f.defaults()
	var since int64
	if err := serverNowSQL.QueryRow(ctx, conn, nil).Scan(&since); err != nil {
		return fmt.Errorf("load events: server time: %w", err)
	}
	args := chstorage.Args{"start": f.Start.UnixMilli(), "span": f.Span.Milliseconds(), "seed": f.Seed,
		"subjects": f.Subjects, "sites": f.Sites, "doors": f.Doors, "offset": f.Offset, "n": f.Events}
	if err := loadEventsSQL.Exec(ctx, conn, args); err != nil {
		return fmt.Errorf("load events: %w", err)
	}
	for _, q := range deriveSQL {
		if err := q.Exec(ctx, conn, chstorage.Args{"since_ms": since}); err != nil {
			return fmt.Errorf("load events: %s: %w", q.Name, err)
		}
	}
	return nil
}

// Redeliver inserts again about one event in every `every` already stored
// (as an at-least-once pipeline does after a crash): duplicates that
// ReplacingMergeTree has not merged yet.
func Redeliver(ctx context.Context, conn driver.Conn, every uint64) error {
	for _, q := range []*chstorage.Statement{redeliverEventsSQL, redeliverCopySQL} {
		if err := q.Exec(ctx, conn, chstorage.Args{"every": every}); err != nil {
			return fmt.Errorf("redeliver events: %w", err)
		}
	}
	return nil
}
