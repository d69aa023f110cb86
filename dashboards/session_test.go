package dashboards

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Each role's session offers exactly what the routes it calls admit.
func TestSessionFor(t *testing.T) {
	f := func(role httpapi.Role, pages []string, actions ...string) {
		t.Helper()
		s := sessionFor(httpapi.Principal{Name: "t", Role: role})
		assert.Equal(t, pages, s.Pages, role)
		var got []string
		for _, a := range []string{"change_alert_status", "suspend_credential", "reveal_identity", "read_kpis",
			"read_requests", "read_reviews", "read_reports", "read_migrations"} {
			if s.Actions[a] {
				got = append(got, a)
			}
		}
		assert.Equal(t, actions, got, role)
	}
	base := []string{"overview", "alerts", "investigate", "credentials", "estate"}
	all := append(append([]string{}, base...), "reports")
	f(httpapi.RoleAnalyst, base, "change_alert_status")
	f(httpapi.RoleResponder, base, "change_alert_status", "suspend_credential")
	f(httpapi.RoleManager, all, "suspend_credential", "read_kpis", "read_requests", "read_reviews", "read_reports")
	f(httpapi.RoleAdmin, all, "change_alert_status", "suspend_credential", "reveal_identity", "read_kpis",
		"read_requests", "read_reviews", "read_reports", "read_migrations")

	// A token limited to sites: its sites, and no fleet-wide page data.
	s := sessionFor(httpapi.Principal{Name: "t", Role: httpapi.RoleManager, Sites: []string{"s1"}})
	assert.Equal(t, []string{"s1"}, s.Sites)
	for a, want := range map[string]bool{"read_kpis": true, "read_reports": true, "suspend_credential": true,
		"read_requests": false, "read_reviews": false, "read_ingest_health": false, "read_revocations": false} {
		assert.Equal(t, want, s.Actions[a], a)
	}
	assert.Contains(t, s.Pages, "reports")
	assert.True(t, sessionFor(httpapi.Principal{Role: httpapi.RoleAnalyst}).Actions["read_ingest_health"])
	assert.Empty(t, sessionFor(httpapi.Principal{Role: httpapi.RoleAnalyst}).Sites)
}
