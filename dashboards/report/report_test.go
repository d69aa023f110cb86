package report

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), string(got), "%s differs from the golden file (go test -update rewrites it)", path)
}

func TestWeeks(t *testing.T) {
	f := func(in, start string) {
		t.Helper()
		w, err := ParseWeek(in)
		require.NoError(t, err)
		assert.Equal(t, start, w.Start().Format(time.DateOnly), in)
		assert.Equal(t, in, w.String())
		assert.Equal(t, w, WeekOf(w.Start().Add(6*24*time.Hour+23*time.Hour)))
	}
	f("2026-W47", "2026-11-16")
	f("2026-W01", "2025-12-29")
	f("2026-W53", "2026-12-28")
	f("2021-W01", "2021-01-04")
	for _, bad := range []string{"2025-W53", "2026-W00", "2026-W54", "2026-47", "26-W47", "2026-W4", ""} {
		_, err := ParseWeek(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "2026-W47", LastComplete(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)).String())
	assert.Equal(t, "2026-W46", LastComplete(time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)).String())
	assert.Equal(t, "2026-W53", Week{2027, 1}.Add(-1).String())
}

// The report of the fixed data set, in every format, against the goldens.
func TestReportGolden(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	ctx := context.Background()
	for _, tc := range []struct{ name, site string }{{"fleet", ""}, {"site-b", "site-b"}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Generate(ctx, conn, Query{Week: fixtureWeek, Site: tc.site, Now: fixtureNow})
			require.NoError(t, err)
			for _, format := range Formats {
				var b bytes.Buffer
				require.NoError(t, Render(&b, r, format))
				golden(t, tc.name+"."+format, b.Bytes())
			}
		})
	}
}

// Spot checks of the fixture's numbers, so the goldens are known to be right
// and not only stable.
func TestReportNumbers(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	r, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: fixtureNow})
	require.NoError(t, err)
	require.Len(t, r.Weeks, 5)
	assert.Equal(t, "2026-W43", r.Weeks[0].Week)
	cur := r.Current()
	// Access events of W47 (wi=4): per site and vendor 6+8+si granted and
	// 1+(4+vi)%3 denied, battery 1+4%3=2 and offline 1 on the first door,
	// a jam on nuki at site-a; duplicates counted once.
	granted := (14 + 15) * 3
	denied := 2 * (2 + 3 + 1)
	health := 2 * (2 + 1)
	assert.EqualValues(t, granted+denied+health+1+1, cur.Events) // +cred-x1's late use
	assert.EqualValues(t, denied, cur.Denied)
	assert.EqualValues(t, 4, cur.BatteryLow)
	assert.EqualValues(t, 2, cur.Offline)
	assert.EqualValues(t, 1, cur.LockJammed)
	assert.EqualValues(t, 6, cur.DeadLetters)
	assert.InDelta(t, 6.0/float64(cur.Events+6), cur.DLQRate, 1e-12)
	// 8 credentials issued in W47, k%3 != 2 activated: 6 of them.
	assert.Equal(t, 8, cur.Activation.Issued)
	assert.Equal(t, 6, cur.Activation.Activated)
	assert.InDelta(t, 0.75, cur.Activation.SuccessRate, 1e-12)
	// Revocation latency of W47: confirmed rev-4-0 (5 s: 5000+250 ms to
	// the last lock), rev-4-1 pending a lock.
	assert.Equal(t, 2, cur.RevocationLatency.Count)
	assert.Equal(t, 1, cur.RevocationLatency.Confirmed)
	assert.InDelta(t, 5.25, cur.RevocationLatency.P50, 1e-9)
	assert.Equal(t, 1, cur.PendingLocks)
	// Alerts: a-01..a-06 (a-04 twice, counted once).
	assert.EqualValues(t, 6, cur.Alerts)
	assert.EqualValues(t, 6, r.Anomalies.Total)
	require.NotEmpty(t, r.Anomalies.Detectors)
	ub := r.Anomalies.Detectors[0]
	assert.Equal(t, "unlock_burst", ub.Detector)
	assert.EqualValues(t, 3, ub.Alerts)
	assert.Equal(t, []KeyCount{{"subj-1", 2}, {"subj-2", 1}}, ub.TopSubjects)
	for _, d := range r.Anomalies.Detectors {
		if d.Detector == "denied_storm" {
			assert.EqualValues(t, 0, d.Open, "a-04's newest version is acknowledged")
		}
	}
	// Stale: cred-s1, cred-s2 at W47's end; cred-s3 too in W43..W46.
	assert.Equal(t, 2, cur.StaleCredentials)
	assert.Equal(t, 3, r.Weeks[0].StaleCredentials)
	ids := []string{}
	for _, c := range r.Stale.Credentials {
		ids = append(ids, c.CredentialID)
	}
	assert.Equal(t, []string{"cred-s1", "cred-s2"}, ids)
	// Expired exceptions, oldest end date first: cred-x4 (break-glass
	// without an end date: activation + 24 h), cred-x1 (used after its end:
	// severity raised), cred-x2, cred-x5; not cred-x3 (revoked) nor cred-x6
	// (within the grace).
	assert.Equal(t, 4, r.Expired.Total)
	require.Len(t, r.Expired.Credentials, 4)
	var expired []string
	for _, c := range r.Expired.Credentials {
		expired = append(expired, c.CredentialID)
	}
	assert.Equal(t, []string{"cred-x4", "cred-x1", "cred-x2", "cred-x5"}, expired)
	x4, x1 := r.Expired.Credentials[0], r.Expired.Credentials[1]
	assert.True(t, x4.BreakGlass)
	assert.Equal(t, time.Date(2026, 9, 2, 12, 0, 0, 0, time.UTC).UnixMilli(), x4.SinceMs)
	assert.Equal(t, "medium", x4.Severity)
	assert.Equal(t, "high", x1.Severity, "used after its end date")
	assert.Equal(t, fixtureWeek.End().UnixMilli(), r.ExpiredAsOfMs)
	for _, w := range r.Weeks {
		assert.Equal(t, HistoryFull, w.History, w.Week)
	}
	// Lock health by vendor.
	require.Len(t, r.LockHealth.Vendors, 2)
	assert.Equal(t, VendorHealth{Vendor: "matter", BatteryLow: 4, Offline: 2, LocksAffect: 2}, r.LockHealth.Vendors[0])
	assert.Equal(t, VendorHealth{Vendor: "nuki", LockJammed: 1, LocksAffect: 1}, r.LockHealth.Vendors[1])
}

// ParseWeek reads user input (CLI flag, query parameter, report ids): it
// never panics, and a week it accepts prints back as the input and starts
// on a Monday.
func FuzzParseWeek(f *testing.F) {
	for _, s := range []string{"2026-W47", "2026-W53", "2025-W53", "2026-W00", "0000-W01", "9999-W52", "2026-w47", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeek(s)
		if err != nil {
			return
		}
		assert.Equal(t, s, w.String())
		assert.Equal(t, time.Monday, w.Start().Weekday())
		assert.Equal(t, w, WeekOf(w.Start()))
	})
}
