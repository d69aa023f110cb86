package control

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplateValidate(t *testing.T) {
	for role, tpl := range DefaultTemplates() {
		require.NoError(t, tpl.Validate(), role)
	}
	f := func(name string, change func(t *Template), want string) {
		t.Run(name, func(t *testing.T) {
			tpl := DefaultTemplates()["contractor"]
			change(&tpl)
			assert.ErrorContains(t, tpl.Validate(), want)
		})
	}
	f("role", func(t *Template) { t.Role = "pirate" }, "unknown role")
	f("groups", func(t *Template) { t.DoorGroups = nil }, "door_groups")
	f("approval", func(t *Template) { t.Approval = "always" }, "approval")
	f("break-glass needs two", func(t *Template) { t.BreakGlass = true }, "two approvers")
	f("window", func(t *Template) { t.Windows = []Window{{Start: "7am", End: "19:00"}} }, "HH:MM")
	f("day", func(t *Template) { t.Windows = []Window{{Days: []string{"funday"}, Start: "07:00", End: "19:00"}} }, "day")
}

func TestResolveGroups(t *testing.T) {
	f := func(role string, extra []string, want []string, wantWhy string) {
		t.Helper()
		groups, why := DefaultTemplates()[role].ResolveGroups(extra)
		assert.Equal(t, want, groups)
		assert.Equal(t, wantWhy, why)
	}
	f("guest", nil, []string{"amenity", "entrance"}, "")
	f("guest", []string{"unit:B-204", "entrance"}, []string{"amenity", "entrance", "unit:B-204"}, "")
	f("guest", []string{"service", "vault"}, []string{"amenity", "entrance", "service", "vault"},
		"door groups beyond the guest template: service, vault")
	f("emergency_responder", []string{"vault"}, []string{"*", "vault"}, "")
}

func TestTemplates(t *testing.T) {
	ts := NewTemplates()
	assert.Len(t, ts.List(), len(Roles))
	at := time.UnixMilli(1_800_000_000_000)

	g := DefaultTemplates()["guest"]
	g.DoorGroups = []string{"entrance"}
	v1 := ts.Next(g, "mgr1", at)
	assert.Equal(t, uint64(at.UnixMilli()), v1.Version)
	assert.Equal(t, "mgr1", v1.UpdatedBy)
	ts.Set(v1)
	v2 := ts.Next(g, "mgr2", at.Add(-time.Hour))
	assert.Equal(t, v1.Version+1, v2.Version, "versions only grow, whatever the clock says")

	// A stored older version does not replace a newer one held here; the
	// other roles go back to what is stored (or the default).
	old := v1
	old.Version = 5
	ts.Merge(map[string]Template{"guest": old})
	got, _ := ts.Get("guest")
	assert.Equal(t, v1.Version, got.Version)
	v3 := v1
	v3.Version = v1.Version + 10
	ts.Merge(map[string]Template{"guest": v3})
	got, _ = ts.Get("guest")
	assert.Equal(t, v3.Version, got.Version)
	_, ok := ts.Get("pirate")
	assert.False(t, ok)
}
