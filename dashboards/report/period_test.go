package report

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestPeriods(t *testing.T) {
	f := func(p Period, want string, start, end time.Time, prev string) {
		t.Helper()
		assert.Equal(t, want, p.String())
		assert.Equal(t, start, p.Start())
		assert.Equal(t, end, p.End())
		assert.Equal(t, prev, p.Prev(1).String())
		again, err := ParsePeriod(p.Kind(), want)
		require.NoError(t, err)
		assert.Equal(t, p, again)
	}
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	f(Month{2026, time.November}, "2026-11", d(2026, 11, 1), d(2026, 12, 1), "2026-10")
	f(Month{2026, time.January}, "2026-01", d(2026, 1, 1), d(2026, 2, 1), "2025-12")
	f(Quarter{2026, 4}, "2026-Q4", d(2026, 10, 1), d(2027, 1, 1), "2026-Q3")
	f(Quarter{2026, 1}, "2026-Q1", d(2026, 1, 1), d(2026, 4, 1), "2025-Q4")
	f(Week{2026, 47}, "2026-W47", d(2026, 11, 16), d(2026, 11, 23), "2026-W46")
	assert.Equal(t, "2026-10", LastCompletePeriod(KindMonth, d(2026, 11, 24)).String())
	assert.Equal(t, "2026-Q3", LastCompletePeriod(KindQuarter, d(2026, 11, 24)).String())
	for _, bad := range []string{"2026-13", "2026-00", "26-11", "2026-Q5", "2026-q1"} {
		_, err1 := ParseMonth(bad)
		_, err2 := ParseQuarter(bad)
		assert.True(t, err1 != nil && err2 != nil, bad)
	}
}

// The monthly review is the weekly report's generator over months: every
// access event of the fixture (Oct 19 – Nov 22) falls in October or
// November, so the two months' counts add up to the five weeks'.
func TestMonthlyReview(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	ctx := context.Background()
	weekly, err := Generate(ctx, conn, Query{Week: fixtureWeek, Now: fixtureNow})
	require.NoError(t, err)
	monthly, err := Generate(ctx, conn, Query{Period: Month{2026, time.November}, Now: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	assert.Equal(t, "month", monthly.Period)
	assert.Equal(t, "2026-11", monthly.ID)
	require.Len(t, monthly.Weeks, 5)
	assert.Equal(t, []string{"2026-07", "2026-08", "2026-09", "2026-10", "2026-11"},
		[]string{monthly.Weeks[0].Week, monthly.Weeks[1].Week, monthly.Weeks[2].Week, monthly.Weeks[3].Week, monthly.Weeks[4].Week})
	var weeks, months uint64
	for _, w := range weekly.Weeks {
		weeks += w.Events
	}
	for _, m := range monthly.Weeks {
		months += m.Events
	}
	assert.Equal(t, weeks, months)
	assert.Positive(t, monthly.Current().Events)
	var b bytes.Buffer
	require.NoError(t, Render(&b, monthly, "md"))
	assert.Contains(t, b.String(), "Fleet health — month 2026-11")
	assert.Contains(t, b.String(), "## KPIs against the previous four months")
	golden(t, "fleet-month.md", b.Bytes())
	quarterly, err := Generate(ctx, conn, Query{Period: Quarter{2026, 4}, Now: time.Date(2027, 1, 2, 6, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	assert.Equal(t, weeks, quarterly.Current().Events, "every event falls in 2026-Q4")
}
