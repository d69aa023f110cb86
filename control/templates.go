package control

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Approval rules.
const (
	ApprovalAuto = "auto" // issued without a human approval
	ApprovalOne  = "one"  // one approver, not the requester
	ApprovalTwo  = "two"  // two different approvers, neither the requester
)

// Roles are the role templates' names.
var Roles = []string{"resident", "guest", "contractor", "maintenance", "concierge", "staff", "cleaning", "emergency_responder"}

// Template is a role's default access: door groups ("*" = every door group
// of the site), weekly windows, the longest validity, the approval rule, the
// door-group prefixes a request may add without it being an exception
// (e.g. "unit:" for residents), and whether the role may be granted through
// break-glass.
type Template struct {
	Role             string   `json:"role"`
	DoorGroups       []string `json:"door_groups"`
	ExtraGroupPrefix []string `json:"extra_group_prefixes,omitempty"`
	Windows          []Window `json:"windows,omitempty"`
	// MaxValiditySeconds bounds valid_until − valid_from (0 = unbounded).
	MaxValiditySeconds int64  `json:"max_validity_s"`
	Approval           string `json:"approval"`
	BreakGlass         bool   `json:"break_glass,omitempty"`
	Version            uint64 `json:"version"`
	UpdatedMs          int64  `json:"updated_ms,omitempty"`
	UpdatedBy          string `json:"updated_by,omitempty"`
}

const day = 24 * 3600

var weekdays = []string{"mon", "tue", "wed", "thu", "fri"}

// DefaultTemplates are the built-in templates (version 0); a template
// changed through the API replaces its role's default.
func DefaultTemplates() map[string]Template {
	list := []Template{
		{Role: "resident", DoorGroups: []string{"entrance", "garage", "amenity"}, ExtraGroupPrefix: []string{"unit:"},
			MaxValiditySeconds: 400 * day, Approval: ApprovalAuto},
		{Role: "guest", DoorGroups: []string{"entrance", "amenity"}, ExtraGroupPrefix: []string{"unit:"},
			MaxValiditySeconds: 14 * day, Approval: ApprovalAuto},
		{Role: "contractor", DoorGroups: []string{"entrance", "service"},
			Windows:            []Window{{Days: weekdays, Start: "07:00", End: "19:00"}},
			MaxValiditySeconds: 90 * day, Approval: ApprovalOne},
		{Role: "maintenance", DoorGroups: []string{"entrance", "service", "garage"}, ExtraGroupPrefix: []string{"unit:"},
			MaxValiditySeconds: 400 * day, Approval: ApprovalOne},
		{Role: "concierge", DoorGroups: []string{"entrance", "amenity", "service"},
			MaxValiditySeconds: 400 * day, Approval: ApprovalOne},
		{Role: "staff", DoorGroups: []string{"entrance", "service", "amenity", "garage"},
			MaxValiditySeconds: 400 * day, Approval: ApprovalOne},
		{Role: "cleaning", DoorGroups: []string{"entrance", "service", "amenity"}, ExtraGroupPrefix: []string{"unit:"},
			Windows:            []Window{{Days: append(slices.Clone(weekdays), "sat"), Start: "06:00", End: "14:00"}},
			MaxValiditySeconds: 180 * day, Approval: ApprovalOne},
		{Role: "emergency_responder", DoorGroups: []string{"*"}, MaxValiditySeconds: 8 * 3600,
			Approval: ApprovalTwo, BreakGlass: true},
	}
	out := map[string]Template{}
	for _, t := range list {
		out[t.Role] = t
	}
	return out
}

// Validate checks a template.
func (t *Template) Validate() error {
	if !slices.Contains(Roles, t.Role) {
		return fmt.Errorf("unknown role %q (want one of %s)", t.Role, strings.Join(Roles, ", "))
	}
	if len(t.DoorGroups) == 0 {
		return errors.New("door_groups: at least one door group")
	}
	for _, g := range t.DoorGroups {
		if strings.TrimSpace(g) == "" {
			return errors.New("door_groups: empty door group")
		}
	}
	switch t.Approval {
	case ApprovalAuto, ApprovalOne, ApprovalTwo:
	default:
		return fmt.Errorf("approval %q: want auto, one or two", t.Approval)
	}
	if t.BreakGlass && t.Approval != ApprovalTwo {
		return errors.New("approval: a break-glass role needs two approvers")
	}
	if t.MaxValiditySeconds < 0 {
		return errors.New("max_validity_s: must not be negative")
	}
	return validateWindows(t.Windows)
}

func validateWindows(ws []Window) error {
	for i, w := range ws {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("windows[%d]: %w", i, err)
		}
	}
	return nil
}

// Templates is the set of role templates an instance works with: the
// built-in defaults overlaid with the changed ones (stored in ClickHouse,
// control_templates, and reloaded every few seconds so every instance sees
// a change). It is safe for concurrent use.
type Templates struct {
	mu sync.RWMutex
	by map[string]Template
}

// NewTemplates returns the built-in templates.
func NewTemplates() *Templates { return &Templates{by: DefaultTemplates()} }

// Get returns a role's template.
func (ts *Templates) Get(role string) (Template, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t, ok := ts.by[role]
	return t, ok
}

// List returns every template, sorted by role.
func (ts *Templates) List() []Template {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	out := make([]Template, 0, len(ts.by))
	for _, t := range ts.by {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out
}

// Merge takes the stored templates (the newest version of each changed
// role) over the defaults; a version this instance already holds that is
// newer than the stored one is kept.
func (ts *Templates) Merge(stored map[string]Template) {
	by := DefaultTemplates()
	for role, t := range stored {
		by[role] = t
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for role, t := range by {
		if cur, ok := ts.by[role]; !ok || t.Version >= cur.Version {
			ts.by[role] = t
		}
	}
}

// Next returns t as the next version of its role's template, changed by
// actor at now; Set makes it current once it is stored.
func (ts *Templates) Next(t Template, actor string, now time.Time) Template {
	cur, _ := ts.Get(t.Role)
	t.Version = max(uint64(now.UnixMilli()), cur.Version+1)
	t.UpdatedMs = now.UnixMilli()
	t.UpdatedBy = actor
	return t
}

// Set makes t its role's current template.
func (ts *Templates) Set(t Template) {
	ts.mu.Lock()
	ts.by[t.Role] = t
	ts.mu.Unlock()
}

// ResolveGroups returns the door groups of a credential of template t with
// the extra groups a request asked for, and why that is an exception (""
// when it is not).
func (t Template) ResolveGroups(extra []string) (groups []string, exception string) {
	groups = slices.Clone(t.DoorGroups)
	var beyond []string
	for _, g := range extra {
		if slices.Contains(groups, g) {
			continue
		}
		groups = append(groups, g)
		if slices.Contains(t.DoorGroups, "*") {
			continue
		}
		allowed := false
		for _, p := range t.ExtraGroupPrefix {
			if strings.HasPrefix(g, p) {
				allowed = true
			}
		}
		if !allowed {
			beyond = append(beyond, g)
		}
	}
	sort.Strings(groups)
	if len(beyond) > 0 {
		exception = "door groups beyond the " + t.Role + " template: " + strings.Join(beyond, ", ")
	}
	return groups, exception
}
