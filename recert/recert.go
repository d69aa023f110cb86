// Package recert is access recertification: a campaign asks a site's
// managers to confirm or revoke, by a deadline, each credential that gives
// someone access at the site; when the deadline passes, what nobody
// confirmed is suspended (or left as it is, per the campaign). The root
// holds the campaign, its items and decisions and the rules between them;
// recert/store keeps them in ClickHouse and recert/api serves them and
// enforces deadlines through the control plane's commands.
package recert

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Decisions on an item.
const (
	Pending   = ""          // not decided yet
	Confirmed = "confirmed" // the person still needs the access
	Revoked   = "revoked"   // the reviewer revoked it
	Suspended = "suspended" // nobody confirmed it by the deadline: suspended
	Lapsed    = "lapsed"    // nobody confirmed it by the deadline; the campaign leaves it (on_deadline none)
)

// What a campaign does at its deadline with undecided items.
const (
	OnDeadlineSuspend = "suspend"
	OnDeadlineNone    = "none"
)

// OnDeadlines lists the accepted on_deadline values.
var OnDeadlines = []string{OnDeadlineSuspend, OnDeadlineNone}

// Campaign is one recertification of a site.
type Campaign struct {
	ID         string `json:"id"`
	SiteID     string `json:"site_id"`
	CreatedMs  int64  `json:"created_ms"`
	DeadlineMs int64  `json:"deadline_ms"`
	CreatedBy  string `json:"created_by"`
	OnDeadline string `json:"on_deadline"`
	// ClosedMs is when the deadline was enforced (0: open).
	ClosedMs int64  `json:"closed_ms,omitempty"`
	Version  uint64 `json:"-"`
}

// Item is one credential under review and its decision.
type Item struct {
	CredentialID string   `json:"credential_id"`
	SubjectID    string   `json:"subject_id"`
	Role         string   `json:"role"`
	State        string   `json:"state"` // when the campaign opened
	DoorGroups   []string `json:"door_groups"`
	Decision     string   `json:"decision"`
	DecidedBy    string   `json:"decided_by,omitempty"`
	DecidedMs    int64    `json:"decided_ms,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// Counts are a campaign's items by decision.
type Counts struct {
	Items     int `json:"items"`
	Pending   int `json:"pending"`
	Confirmed int `json:"confirmed"`
	Revoked   int `json:"revoked"`
	Suspended int `json:"suspended"`
	Lapsed    int `json:"lapsed"`
}

// Count counts items by decision.
func Count(items []Item) Counts {
	c := Counts{Items: len(items)}
	for _, it := range items {
		switch it.Decision {
		case Pending:
			c.Pending++
		case Confirmed:
			c.Confirmed++
		case Revoked:
			c.Revoked++
		case Suspended:
			c.Suspended++
		case Lapsed:
			c.Lapsed++
		}
	}
	return c
}

// Status of a campaign at a moment.
const (
	StatusOpen    = "open"    // before the deadline
	StatusOverdue = "overdue" // past the deadline, not enforced yet
	StatusClosed  = "closed"
)

// StatusAt is the campaign's status at now.
func (c Campaign) StatusAt(now int64) string {
	switch {
	case c.ClosedMs > 0:
		return StatusClosed
	case now >= c.DeadlineMs:
		return StatusOverdue
	}
	return StatusOpen
}

// Limits of a campaign's deadline.
const (
	MinDeadline = time.Hour
	MaxDeadline = 180 * 24 * time.Hour
)

// Validate checks a new campaign at now.
func (c Campaign) Validate(now int64) error {
	var errs []error
	if c.SiteID == "" || len(c.SiteID) > 128 {
		errs = append(errs, errors.New("site_id: required (one site per campaign)"))
	}
	d := time.Duration(c.DeadlineMs-now) * time.Millisecond
	if d < MinDeadline || d > MaxDeadline {
		errs = append(errs, fmt.Errorf("deadline_ms: between %s and %d days from now", MinDeadline, int(MaxDeadline.Hours()/24)))
	}
	if !slices.Contains(OnDeadlines, c.OnDeadline) {
		errs = append(errs, fmt.Errorf("on_deadline %q: want suspend or none", c.OnDeadline))
	}
	return errors.Join(errs...)
}

// ErrClosed is returned for a decision on a closed campaign.
var ErrClosed = errors.New("the campaign is closed")

// ErrDecided is returned for a second decision on an item.
var ErrDecided = errors.New("the item is decided")

// CheckDecision says whether a reviewer may decide an item now: the
// campaign is not closed (a late decision before enforcement counts) and
// the item is undecided (a decision is final: a confirmed item is revoked
// through the control plane, not by changing its decision).
func CheckDecision(c Campaign, it Item, decision string) error {
	if decision != Confirmed && decision != Revoked {
		return fmt.Errorf("decision %q: want confirmed or revoked", decision)
	}
	if c.ClosedMs > 0 {
		return ErrClosed
	}
	if it.Decision != Pending {
		return fmt.Errorf("%w (%s by %s)", ErrDecided, it.Decision, it.DecidedBy)
	}
	return nil
}

// Undecided are the items nobody decided.
func Undecided(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Decision == Pending {
			out = append(out, it)
		}
	}
	return out
}
