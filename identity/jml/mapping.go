package jml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/identity"
)

// Rule maps members of one identity group to a credential of a role
// template.
type Rule struct {
	// Group matches a group's display name (case-insensitively), its
	// externalId or its SCIM id.
	Group string `json:"group"`
	Role  string `json:"role"`
	// Site, when set, is the credential's site; otherwise the person's
	// (the access extension's site).
	Site string `json:"site,omitempty"`
	// DoorGroups are added to the template's door groups (the template's
	// rules on extra groups apply: beyond them it is an exception).
	DoorGroups []string `json:"door_groups,omitempty"`
}

// Mapping is the group → role template configuration: which credentials
// a person's groups entitle them to.
type Mapping struct {
	Rules []Rule `json:"rules"`
}

// DefaultMapping maps a group named like a role ("resident", "staff", ...,
// case-insensitive) to that role: every role that is not break-glass.
func DefaultMapping() *Mapping {
	m := &Mapping{}
	for _, t := range control.DefaultTemplates() {
		if !t.BreakGlass {
			m.Rules = append(m.Rules, Rule{Group: t.Role, Role: t.Role})
		}
	}
	sort.Slice(m.Rules, func(i, j int) bool { return m.Rules[i].Role < m.Rules[j].Role })
	return m
}

// LoadMapping reads a mapping file (JSON: {"rules":[{"group":...,"role":...}]}).
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("role mapping: %w", err)
	}
	return ParseMapping(data)
}

// ParseMapping decodes and validates a mapping.
func ParseMapping(data []byte) (*Mapping, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var m Mapping
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("role mapping: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every rule: a group, a role template that is not
// break-glass (those are requested through break-glass only).
func (m *Mapping) Validate() error {
	var errs []error
	templates := control.DefaultTemplates()
	for i, r := range m.Rules {
		t, ok := templates[r.Role]
		switch {
		case strings.TrimSpace(r.Group) == "":
			errs = append(errs, fmt.Errorf("role mapping rule %d: group is required", i))
		case !ok:
			errs = append(errs, fmt.Errorf("role mapping rule %d: unknown role %q (want one of %s)", i, r.Role,
				strings.Join(control.Roles, ", ")))
		case t.BreakGlass:
			errs = append(errs, fmt.Errorf("role mapping rule %d: %s is a break-glass role, never issued by identity sync", i, r.Role))
		}
		for _, g := range r.DoorGroups {
			if strings.TrimSpace(g) == "" {
				errs = append(errs, fmt.Errorf("role mapping rule %d: empty door group", i))
			}
		}
	}
	if len(m.Rules) == 0 {
		errs = append(errs, errors.New("role mapping: no rules"))
	}
	return errors.Join(errs...)
}

// Want is one credential a person should hold.
type Want struct {
	Role       string
	Site       string
	DoorGroups []string // sorted
}

func (w Want) key() string {
	return w.Role + "\x00" + w.Site + "\x00" + strings.Join(w.DoorGroups, "\x00")
}

func (r Rule) matches(g identity.Group) bool {
	return strings.EqualFold(r.Group, g.DisplayName) || (g.ExternalID != "" && r.Group == g.ExternalID) || r.Group == g.ID
}

// Wants returns the credentials a person in groups at site should hold,
// one per distinct role, site and door groups, sorted.
func (m *Mapping) Wants(groups []identity.Group, site string) []Want {
	seen := map[string]bool{}
	var out []Want
	for _, r := range m.Rules {
		if !slices.ContainsFunc(groups, r.matches) {
			continue
		}
		w := Want{Role: r.Role, Site: cmpOr(r.Site, site), DoorGroups: sortedCopy(r.DoorGroups)}
		if !seen[w.key()] {
			seen[w.key()] = true
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// Managed reports whether identity sync manages credentials of a role
// (some rule maps to it): those follow the person's groups; credentials of
// other roles (guests, break-glass) are left alone until the person leaves.
func (m *Mapping) Managed(role string) bool {
	return slices.ContainsFunc(m.Rules, func(r Rule) bool { return r.Role == role })
}

// satisfies reports whether a credential is the one a want asks for.
func (w Want) satisfies(r *control.Record) bool {
	return r.Role == w.Role && r.SiteID == w.Site && slices.Equal(sortedCopy(r.ExtraGroups), w.DoorGroups)
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
