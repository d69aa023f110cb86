package report

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// fakeEstate answers with the default policy's weak links of a small estate,
// ranked by fixed uses, and remembers the range it was asked for.
type fakeEstate struct{ from, to time.Time }

func (f *fakeEstate) WeakLinks(_ context.Context, from, to time.Time, site string) (*estate.WeakLinkReport, error) {
	f.from, f.to = from, to
	locks := []estate.Lock{
		{Vendor: "legacy", LockID: "P1/R1", Model: "osdp-panel", Firmware: "1.0", Door: estate.Door{SiteID: "site-a", DoorID: "lobby"}, Tier: 1},
		{Vendor: "seam", LockID: "k-boiler", Model: "generic-keypad-lock", Door: estate.Door{SiteID: "site-a", DoorID: "boiler"}, Tier: 2},
		{Vendor: "matter", LockID: "m-gym", Model: "door-lock", Door: estate.Door{SiteID: "site-a", DoorID: "gym"}, Tier: 3},
	}
	links, err := estate.DefaultPolicy().WeakLinks(locks, map[estate.Door]int{{SiteID: "site-a", DoorID: "boiler"}: 500})
	if err != nil {
		return nil, err
	}
	return &estate.WeakLinkReport{Locks: 3, WeakLinks: links, Total: len(links)}, nil
}

func TestReportEstateSection(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	src := &fakeEstate{}
	r, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: fixtureNow, Estate: src})
	require.NoError(t, err)
	assert.Equal(t, fixtureWeek.Start(), src.from, "ranked by the week's traffic")
	assert.Equal(t, fixtureWeek.End(), src.to)
	require.NotNil(t, r.Estate)
	assert.Equal(t, 2, r.Estate.WeakLinks)
	assert.Equal(t, []TierCount{{Tier: 1, WeakLinks: 1}, {Tier: 2, WeakLinks: 1}}, r.Estate.ByTier)
	// The busy tier-2 door outranks the tier-1 one by risk; the plan puts tier 1 first.
	require.Len(t, r.Estate.Plan, 2)
	assert.Equal(t, "P1/R1", r.Estate.Plan[0].Lock.LockID)

	render := func(format string) string {
		var b bytes.Buffer
		require.NoError(t, Render(&b, r, format))
		return b.String()
	}
	md := render("md")
	assert.Contains(t, md, "## Weak links and the upgrade plan")
	assert.Contains(t, md, "2 of 3 locks in service are weak links")
	assert.Contains(t, md, "| 1 | 1 | site-a | lobby | legacy/P1/R1 | legacy/osdp-panel | revocation_delay (critical")
	assert.Contains(t, md, "replace with matter/door-lock-aliro (cost 3)")
	assert.Contains(t, render("html"), `<h2 id="estate">Weak links and the upgrade plan</h2>`)
	csv := render("csv")
	assert.Contains(t, csv, "weak_links,"+r.Week+",total,,2")
	assert.Contains(t, csv, "upgrade_plan,"+r.Week+",2,lock,seam/k-boiler")
	assert.Contains(t, render("json"), "\"estate\": {\n    \"locks\": 3,")
}
