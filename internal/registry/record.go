package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Operations of a lock record.
const (
	OpFile   = "file"   // loaded from a registry file (version 0)
	OpCreate = "create" // registered through the API
	OpUpdate = "update" // changed through the API
	OpImport = "import" // created or changed by a bulk import
	OpRetire = "retire" // taken out of service
)

// Record is one lock's full state after a change, as the lock registry
// publishes it (Kafka, compacted, keyed by RecordKey) and keeps its history
// (ClickHouse). The highest Version of a lock is its state; Version is a
// millisecond clock that never goes back for a lock (max(now, previous+1)).
type Record struct {
	Lock
	Version uint64 `json:"version"`
	Retired bool   `json:"retired,omitempty"`
	Op      string `json:"op"`
	Actor   string `json:"actor,omitempty"`
	Reason  string `json:"reason,omitempty"`
	TsMs    int64  `json:"ts_ms,omitempty"`
}

// RecordKey is the Kafka key of a lock's records: vendor and lock id.
func RecordKey(vendor, lockID string) []byte { return []byte(vendor + "/" + lockID) }

// DecodeRecord decodes a lock record and checks its lock.
func DecodeRecord(data []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("decode lock record: %w", err)
	}
	if err := rec.Lock.Validate(); err != nil {
		return rec, fmt.Errorf("lock record: %w", err)
	}
	return rec, nil
}

// MaxTier is the highest tier number a lock may carry.
const MaxTier = 9

// Validate checks a lock's fields: a known vendor, a lock id, ids without
// whitespace or e-mail addresses, non-empty door groups, a tier 0..MaxTier.
// Whether the tier exists is the estate policy's to say.
func (l Lock) Validate() error {
	var errs []error
	if !slices.Contains(event.Vendors, l.Vendor) {
		errs = append(errs, fmt.Errorf("vendor %q: want one of %s", l.Vendor, strings.Join(event.Vendors, ", ")))
	}
	if l.LockID == "" {
		errs = append(errs, errors.New("lock_id: required"))
	}
	for _, f := range []struct{ name, v string }{{"lock_id", l.LockID}, {"site_id", l.SiteID}, {"zone_id", l.ZoneID},
		{"door_id", l.DoorID}, {"model", l.Model}, {"firmware", l.Firmware}} {
		if err := checkID(f.name, f.v); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range l.Groups {
		if g == "" {
			errs = append(errs, errors.New("groups: empty door group"))
		} else if err := checkID("groups", g); err != nil {
			errs = append(errs, err)
		}
	}
	if l.Tier < 0 || l.Tier > MaxTier {
		errs = append(errs, fmt.Errorf("tier %d: want 0 (not recorded) to %d", l.Tier, MaxTier))
	}
	return errors.Join(errs...)
}

func checkID(field, v string) error {
	switch {
	case len(v) > 200:
		return fmt.Errorf("%s: longer than 200 characters", field)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%s: must not contain whitespace or control characters", field)
	case strings.Contains(v, "@"):
		return fmt.Errorf("%s: looks like an e-mail address", field)
	}
	return nil
}

// Same reports whether two locks have the same fields.
func (l Lock) Same(o Lock) bool {
	return l.Vendor == o.Vendor && l.LockID == o.LockID && slices.Equal(l.Groups, o.Groups) && l.LockInfo == o.LockInfo &&
		l.Model == o.Model && l.Firmware == o.Firmware && l.Tier == o.Tier
}
