package pipeline

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
)

var (
	insertLocations  = chstorage.Query("pipeline/insert_locations")
	insertIdentities = chstorage.Query("pipeline/insert_identities")
	markHours        = chstorage.Query("pipeline/mark_hours")
)

// maxSeen bounds the lookup keys Derived remembers having written; past it
// the memory is cleared and keys are written again (harmless: the lookup
// tables are ReplacingMergeTrees).
const maxSeen = 1 << 20

// Derived writes, beside each batch of stored events, what materialized
// views on access_events used to derive on every insert (migration 0090):
//
//   - access_locations (door/lock → site, per month) and access_identities
//     (credential/device → subject, per month): only keys this writer has
//     not written yet, usually none after the first minutes;
//   - access_rollup_dirty: one row per hour the batch touched, stamped with
//     the server's clock (INSERT … SELECT now()), written after the events,
//     so the rollup job recomputes those hours (see query/rollup).
//
// A batch that fails is written again whole (the keys are remembered only
// once stored), so the lookups never miss a stored event's key.
type Derived struct {
	seed maphash.Seed
	// seen is shared by the batches of one writer (one is filled while
	// the previous one is stored).
	mu    *sync.Mutex
	seen  map[uint64]struct{}
	fresh map[uint64]struct{} // this batch's new keys, remembered once stored
	hours map[int64]struct{}
	locs  [][]any
	ids   [][]any
	hlist []int64
	// the month of the last event (most of a batch shares one)
	monthFrom, monthTo int64
}

// NewDerived returns an empty Derived.
func NewDerived() *Derived {
	return &Derived{seed: maphash.MakeSeed(), mu: &sync.Mutex{}, seen: map[uint64]struct{}{},
		fresh: map[uint64]struct{}{}, hours: map[int64]struct{}{}}
}

// Sibling returns an empty batch that shares d's memory of written keys
// (for a writer that fills one batch while the previous one is stored).
func (d *Derived) Sibling() *Derived {
	return &Derived{seed: d.seed, mu: d.mu, seen: d.seen, fresh: map[uint64]struct{}{}, hours: map[int64]struct{}{}}
}

// Add notes one stored event.
func (d *Derived) Add(e *event.Access) {
	d.hours[e.TsMs/hourMs*hourMs] = struct{}{}
	if e.TsMs < d.monthFrom || e.TsMs >= d.monthTo {
		d.monthFrom, d.monthTo = monthBounds(e.TsMs)
	}
	month := d.monthFrom
	var h maphash.Hash
	h.SetSeed(d.seed)
	writeKey(&h, 'L', month, e.SiteID, e.ZoneID, e.DoorID, e.LockID, e.Vendor)
	if k := h.Sum64(); d.isNew(k) {
		d.locs = append(d.locs, []any{time.Unix(month/1000, 0).UTC(), e.SiteID, e.ZoneID, e.DoorID, e.LockID, e.Vendor, e.TsMs})
	}
	if e.CredentialID == "" && e.DeviceID == "" {
		return
	}
	h.Reset()
	writeKey(&h, 'I', month, e.CredentialID, e.DeviceID, e.SubjectID)
	if k := h.Sum64(); d.isNew(k) {
		d.ids = append(d.ids, []any{time.Unix(month/1000, 0).UTC(), e.CredentialID, e.DeviceID, e.SubjectID, e.TsMs})
	}
}

func (d *Derived) isNew(k uint64) bool {
	d.mu.Lock()
	_, ok := d.seen[k]
	d.mu.Unlock()
	if ok {
		return false
	}
	if _, ok := d.fresh[k]; ok {
		return false
	}
	d.fresh[k] = struct{}{}
	return true
}

func writeKey(h *maphash.Hash, kind byte, month int64, parts ...string) {
	_ = h.WriteByte(kind)
	var b [8]byte
	for i := range b {
		b[i] = byte(month >> (8 * i))
	}
	_, _ = h.Write(b[:])
	for _, p := range parts {
		_, _ = h.WriteString(p)
		_ = h.WriteByte(0)
	}
}

// Store writes the batch's new lookup keys and its hours' dirty marks. Call
// it after the events are stored.
func (d *Derived) Store(ctx context.Context, conn driver.Conn) error {
	if len(d.locs) > 0 {
		if err := insertLocations.Insert(ctx, conn, d.locs...); err != nil {
			return &storeError{table: "access_locations", err: err}
		}
	}
	if len(d.ids) > 0 {
		if err := insertIdentities.Insert(ctx, conn, d.ids...); err != nil {
			return &storeError{table: "access_identities", err: err}
		}
	}
	if len(d.hours) > 0 {
		d.hlist = d.hlist[:0]
		for h := range d.hours {
			d.hlist = append(d.hlist, h)
		}
		slices.Sort(d.hlist)
		if err := markHours.Exec(ctx, conn, chstorage.Args{"hours": d.hlist}); err != nil {
			return &storeError{table: "access_rollup_dirty", err: fmt.Errorf("mark rollup hours: %w", err)}
		}
	}
	return nil
}

// storeError names the table a failed write of Store was for (counted in
// keyfleet_clickhouse_insert_failures_total like the events' inserts).
type storeError struct {
	table string
	err   error
}

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Stored remembers the batch's keys as written and empties the batch.
func (d *Derived) Stored() {
	d.mu.Lock()
	if len(d.seen)+len(d.fresh) > maxSeen {
		clear(d.seen)
	}
	for k := range d.fresh {
		d.seen[k] = struct{}{}
	}
	d.mu.Unlock()
	d.Reset()
}

// Reset empties the batch; its keys are not remembered as written.
func (d *Derived) Reset() {
	clear(d.fresh)
	clear(d.hours)
	clear(d.locs)
	clear(d.ids)
	d.locs, d.ids = d.locs[:0], d.ids[:0]
}

const hourMs = int64(3_600_000)

// monthBounds returns the first millisecond (UTC) of ts's month and of the next.
func monthBounds(tsMs int64) (int64, int64) {
	t := time.UnixMilli(tsMs).UTC()
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return from.UnixMilli(), from.AddDate(0, 1, 0).UnixMilli()
}
