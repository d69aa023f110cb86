package report

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

// TestReportDeviceSlices: with device and lock dimensions in the events,
// the default slicers add tables by lock firmware and by OS version (keys
// "<os> <version>", unknown as "(none)"), and a report can pick its slices.
func TestReportDeviceSlices(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	cols := append(append([]string(nil), pipeline.AccessColumns...), pipeline.DimensionColumns...)
	var rows [][]any
	at := fixtureWeek.Start().Add(30 * time.Hour)
	for i := 0; i < 12; i++ {
		osv, outcome := "18.2", "granted"
		if i%3 == 0 {
			osv, outcome = "19.0", "denied"
		}
		ms := at.Add(time.Duration(i) * time.Minute).UnixMilli()
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("dims-%d", i)))
		fw := "4.2.1"
		if i == 11 {
			fw = ""
		}
		rows = append(rows, []any{id, time.UnixMilli(ms).UTC().Truncate(time.Second), ms, ms, "nuki", "site-a", "z", "door-1", "lock-1",
			"subj", "cred", "dev", "attested", "unlock", outcome, "phone_nfc", "", "", uint8(0), "", ms,
			"smart-lock-4-pro", fw, "iPhone 16", "ios", osv, "2026.11.1"})
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", cols, rows...))

	r, err := Generate(ctx, conn, Query{Week: fixtureWeek, Now: fixtureNow})
	require.NoError(t, err)
	var dims []string
	for _, s := range r.Slices {
		dims = append(dims, s.Dimension)
	}
	require.Equal(t, []string{"site", "vendor", "lock_firmware", "os_version"}, dims)
	byOS := r.Slices[3]
	require.Len(t, byOS.Rows, 2)
	assert.Equal(t, "ios 18.2", byOS.Rows[0].Key)
	assert.Equal(t, "ios 19.0", byOS.Rows[1].Key)
	assert.Equal(t, 4.0, *byOS.Rows[1].Values[1], "denied")
	assert.Equal(t, 100.0, *byOS.Rows[1].Values[2], "denied %")
	byFW := r.Slices[2]
	require.Len(t, byFW.Rows, 2)
	assert.Equal(t, "(none)", byFW.Rows[0].Key)
	assert.Equal(t, "4.2.1", byFW.Rows[1].Key)
	var md bytes.Buffer
	require.NoError(t, Render(&md, r, "md"))
	assert.Contains(t, md.String(), "ios 19.0")

	picked, err := SlicersFor([]string{"app_version", "phone_model"})
	require.NoError(t, err)
	r, err = Generate(ctx, conn, Query{Week: fixtureWeek, Now: fixtureNow, Slicers: picked})
	require.NoError(t, err)
	require.Len(t, r.Slices, 2)
	assert.Equal(t, "app_version", r.Slices[0].Dimension)
	assert.Equal(t, "iPhone 16", r.Slices[1].Rows[0].Key)
	_, err = SlicersFor([]string{"door"})
	assert.Error(t, err)
}
