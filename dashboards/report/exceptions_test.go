package report

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// The register section is the register as it stood at the week's end: the
// exception recorded after it is not there, the closed one counts as
// closed in the week, and the list needing attention is soonest expiry
// first; with a site, only that site's exceptions, against its credentials.
func TestReportExceptionRegister(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	r, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: fixtureNow})
	require.NoError(t, err)
	e := r.Register
	require.NotNil(t, e)
	assert.Equal(t, fixtureWeek.End().UnixMilli(), e.AsOfMs)
	assert.Equal(t, 3, e.KPIs.Open)
	assert.Equal(t, 1, e.RecordedInWeek)
	assert.Equal(t, 1, e.ClosedInWeek)
	assert.Equal(t, 1, e.KPIs.ByState[exception.StateClosed])
	var ids []string
	for _, x := range e.Attention {
		ids = append(ids, x.ID)
	}
	assert.Equal(t, []string{"ex-pol-a", "ex-door-b", "ex-lock-a"}, ids)
	assert.True(t, e.Attention[2].ReviewDue)

	b, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: fixtureNow, Site: "site-b"})
	require.NoError(t, err)
	assert.Equal(t, 1, b.Register.KPIs.Open)
	require.Len(t, b.Register.KPIs.BySite, 1)
	assert.Equal(t, "site-b", b.Register.KPIs.BySite[0].Key)
	assert.Equal(t, b.Register.KPIs.Credentials, b.Register.KPIs.BySite[0].Credentials)
}
