package turnover

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// visitorRoles are the fleet's roles an HR or tenant system does not list:
// guests and outside emergency responders (visitor roles of identity sync).
var visitorRoles = []string{fleet.RoleGuest, fleet.RoleEmergency}

// People returns the fleet's people as an HR/tenant feed: every resident,
// staff member, contractor and crew member (not guests or emergency
// responders, who are visitors), keyed by a directory id, in a group named
// like their role, at their site, linked to the subject id their simulated
// credentials already carry (subject_id). Roles outside keyfleet's role
// templates (a scenario's inspection crew) are left out too.
func People(f *fleet.Fleet) []feed.Person {
	var out []feed.Person
	for _, s := range f.Subjects {
		if slices.Contains(visitorRoles, s.Role) || !slices.Contains(control.Roles, s.Role) {
			continue
		}
		first, last, _ := strings.Cut(s.Name, " ")
		email := fmt.Sprintf("%s.%s.%d@residents.example", strings.ToLower(first), strings.ToLower(last), s.Index+1)
		out = append(out, feed.Person{ExternalID: fmt.Sprintf("dir:%06d", s.Index+1), UserName: email, GivenName: first,
			FamilyName: last, DisplayName: s.Name, Email: email, Active: true, Site: f.Sites[s.Site].ID,
			Groups: []string{s.Role}, SubjectID: s.ID})
	}
	return out
}

// WritePeople writes people as a feed CSV file (through a temporary file,
// so a reader never sees half of it).
func WritePeople(path string, people []feed.Person) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"external_id", "user_name", "given_name", "family_name", "display_name", "email", "active",
		"end_date", "site", "groups", "subject_id"})
	for _, p := range people {
		end := ""
		if !p.EndDate.IsZero() {
			end = p.EndDate.UTC().Format("2006-01-02T15:04:05Z")
		}
		_ = w.Write([]string{p.ExternalID, p.UserName, p.GivenName, p.FamilyName, p.DisplayName, p.Email,
			fmt.Sprint(p.Active), end, p.Site, strings.Join(p.Groups, ";"), p.SubjectID})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyfleet-people-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
