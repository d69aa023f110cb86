// Package migrate plans and follows a vendor exit: the locks of one vendor
// are replaced door by door by locks of another, every credential on an old
// lock is granted on its new one and dropped from the old one through the
// control plane's normal command path (an update command with moves), and
// each lock confirms like in a revocation (per-lock acks, stragglers with
// their age). The plan and the progress are pure (estate/api does the I/O);
// Client drives the API for the command line.
package migrate

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// Request is a vendor migration (POST /v1/estate/migrations).
type Request struct {
	FromVendor string    `json:"from_vendor"`
	ToVendor   string    `json:"to_vendor"`
	Locks      []LockMap `json:"locks"`
	Reason     string    `json:"reason,omitempty"`
}

// LockMap is an old lock and the lock that replaces it on its door. The
// new lock takes the old one's site, zone, door, door groups and tier
// (Tier, when set, overrides the tier).
type LockMap struct {
	From     string `json:"from_lock_id"`
	To       string `json:"to_lock_id"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Tier     int    `json:"tier,omitempty"`
}

// MaxLocks bounds one migration.
const MaxLocks = 10_000

// LockColumns are the columns of a locks file in CSV (a header row names
// them; from_lock_id and to_lock_id are required).
var LockColumns = []string{"from_lock_id", "to_lock_id", "model", "firmware", "tier"}

// ParseLocks reads a locks file: a JSON array of LockMap, or CSV with a
// header of LockColumns. Errors name the line (CSV) or item (JSON).
func ParseLocks(data []byte) ([]LockMap, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var out []LockMap
		d := json.NewDecoder(bytes.NewReader(t))
		d.DisallowUnknownFields()
		if err := d.Decode(&out); err != nil {
			return nil, fmt.Errorf("locks file (JSON): %w", err)
		}
		if len(out) > MaxLocks {
			return nil, fmt.Errorf("locks file: more than %d locks", MaxLocks)
		}
		return out, nil
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("locks file: CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(LockColumns, h) {
			return nil, fmt.Errorf("locks file: unknown column %q (known: %s)", h, strings.Join(LockColumns, ", "))
		}
		col[h] = i
	}
	for _, c := range []string{"from_lock_id", "to_lock_id"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("locks file: header lacks %s", c)
		}
	}
	var out []LockMap
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("locks file: %w", err)
		}
		if len(out) >= MaxLocks {
			return nil, fmt.Errorf("locks file: more than %d locks", MaxLocks)
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		m := LockMap{From: get("from_lock_id"), To: get("to_lock_id"), Model: get("model"), Firmware: get("firmware")}
		if t := get("tier"); t != "" {
			if m.Tier, err = strconv.Atoi(t); err != nil {
				return nil, fmt.Errorf("locks file line %d: tier %q: want a number", line, t)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Plan is what a migration changes: the new locks to register, the old
// ones to retire, and the moves of the credentials' grants.
type Plan struct {
	New   []registry.Lock    `json:"new_locks"`
	Old   []registry.Lock    `json:"old_locks"`
	Moves []control.LockMove `json:"moves"`
}

// Lookup returns a lock's current record.
type Lookup func(vendor, lockID string) (registry.Record, bool)

// NewPlan checks a request against the registry: two different known
// vendors; every old lock registered, in service and of the old vendor,
// given once; every new lock given once and not in service elsewhere (one
// already registered on the same door may be taken over). It names every
// problem at once.
func NewPlan(req Request, lookup Lookup) (Plan, error) {
	var errs []error
	for _, v := range []string{req.FromVendor, req.ToVendor} {
		if !slices.Contains(event.Vendors, v) {
			errs = append(errs, fmt.Errorf("vendor %q: want one of %s", v, strings.Join(event.Vendors, ", ")))
		}
	}
	if req.FromVendor == req.ToVendor {
		errs = append(errs, errors.New("from_vendor and to_vendor are the same"))
	}
	if len(req.Locks) == 0 {
		errs = append(errs, errors.New("locks: none to migrate"))
	}
	if len(req.Locks) > MaxLocks {
		errs = append(errs, fmt.Errorf("locks: more than %d", MaxLocks))
	}
	if err := errors.Join(errs...); err != nil {
		return Plan{}, err
	}
	var p Plan
	from, to := map[string]int{}, map[string]int{}
	for i, m := range req.Locks {
		at := fmt.Sprintf("locks[%d]", i)
		if j, dup := from[m.From]; dup {
			errs = append(errs, fmt.Errorf("%s: old lock %s is also locks[%d]", at, m.From, j))
			continue
		}
		if j, dup := to[m.To]; dup {
			errs = append(errs, fmt.Errorf("%s: new lock %s is also locks[%d]", at, m.To, j))
			continue
		}
		from[m.From], to[m.To] = i, i
		old, ok := lookup(req.FromVendor, m.From)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: lock %s/%s is not registered", at, req.FromVendor, m.From))
			continue
		case old.Retired:
			errs = append(errs, fmt.Errorf("%s: lock %s/%s is retired", at, req.FromVendor, m.From))
			continue
		}
		n := old.Lock
		n.Vendor, n.LockID, n.Model, n.Firmware = req.ToVendor, m.To, m.Model, m.Firmware
		if m.Tier != 0 {
			n.Tier = m.Tier
		}
		if err := n.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: new lock: %w", at, err))
			continue
		}
		if cur, ok := lookup(req.ToVendor, m.To); ok && !cur.Retired && cur.LockInfo != old.LockInfo {
			errs = append(errs, fmt.Errorf("%s: lock %s/%s is in service on another door (%s/%s)", at, req.ToVendor, m.To,
				cur.SiteID, cur.DoorID))
			continue
		}
		p.New = append(p.New, n)
		p.Old = append(p.Old, old.Lock)
		p.Moves = append(p.Moves, control.LockMove{From: control.LockRef{Vendor: req.FromVendor, LockID: m.From},
			To: control.LockRef{Vendor: req.ToVendor, LockID: m.To}})
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return p, errors.Join(errs...)
}

// Moved is a credential the plan moves: its state, and the moves of its
// locks.
type Moved struct {
	CredentialID string
	State        string
	Moves        []control.LockMove
}

// movable are the states whose credentials hold locks.
// OnLocks says whether a credential in this state is held by its locks:
// only an active one is (a pending_activation key opens nothing, a
// suspended one was dropped). A move of any other only changes its record.
func OnLocks(state string) bool { return state == event.StateActive }

var movable = []string{event.StateIssued, event.StatePendingActivation, event.StateActive, event.StateSuspended}

// Affected lists the credentials holding an old lock of the plan (live
// states with locks), sorted by credential id.
func (p Plan) Affected(each func(fn func(r *control.Record))) []Moved {
	by := map[control.LockRef]control.LockMove{}
	for _, m := range p.Moves {
		by[m.From] = m
	}
	var out []Moved
	each(func(r *control.Record) {
		if !lifecycle.IsLive(r.State) || !slices.Contains(movable, r.State) {
			return
		}
		var ms []control.LockMove
		for _, l := range r.Locks {
			if m, ok := by[l]; ok {
				ms = append(ms, m)
			}
		}
		if len(ms) > 0 {
			out = append(out, Moved{CredentialID: r.CredentialID, State: r.State, Moves: ms})
		}
	})
	slices.SortFunc(out, func(a, b Moved) int { return strings.Compare(a.CredentialID, b.CredentialID) })
	return out
}
