package integration

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/dashboards/report"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/regression"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/pipeline"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// normalizing is a simulator sink that normalizes its raw records the way
// serve does: the lock and credential registry from the fleet's file, kept
// current by the credential records (an OS update changes the phone's
// dimensions of the events that follow).
type normalizing struct {
	feed   *registry.Feed
	n      *normalize.Normalizer
	events []event.Access
	errs   int
}

func (s *normalizing) Raw(_ context.Context, r *sim.RawRecord) error {
	out, err := s.n.Normalize(nil, r.Envelope.Vendor, r.Envelope.ReceivedMs, "sim", r.Payload)
	if err != nil {
		s.errs++
		return nil
	}
	s.events = append(s.events, out...)
	return nil
}

func (s *normalizing) Credential(_ context.Context, rec *event.Credential) error {
	s.feed.Apply(*rec)
	return nil
}

func (s *normalizing) Close(context.Context) error { return nil }

// The simulator's planted regression (an iOS update refused by the Nuki
// Smart Lock 4 Pro firmware 4.2.1) reaches ClickHouse with the phones' and
// locks' dimensions, the regression detector finds it by OS version with
// the firmware named, and the weekly report shows the slice and the alert.
func TestPlantedRegressionFoundAndReported(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key := []byte("regression-test-pseudonym-key")
	end := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	start := end.Add(-4 * 24 * time.Hour)
	at := end.Add(-36 * time.Hour)
	f, err := fleet.Generate(fleet.Options{Seed: 7, Sites: 3, DoorsPerSite: 60, Subjects: 900, SpareDevices: 1})
	require.NoError(t, err)
	reg := sim.Resolver(f, key)
	sink := &normalizing{feed: registry.NewFeed(reg), n: normalize.New(vendors.Adapters(), reg, key)}
	s, err := sim.New(sim.Options{Fleet: f, Seed: 7, PseudonymKey: key, Mode: sim.ModeBackfill,
		StartMs: start.UnixMilli(), EndMs: end.UnixMilli(), Regression: sim.Regression{AtMs: at.UnixMilli()},
		Sinks: []sim.Sink{sink}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	stats, _, err := s.Run(ctx)
	require.NoError(t, err)
	require.Zero(t, sink.errs)
	t.Logf("planted: %d phones updated, %d attempts refused; %d events", stats.OSUpdates, stats.RegressionDenials, len(sink.events))
	require.Positive(t, stats.OSUpdates)
	require.Positive(t, stats.RegressionDenials)

	cols := append(append([]string(nil), pipeline.AccessColumns...), pipeline.DimensionColumns...)
	rows := make([][]any, 0, len(sink.events))
	for _, e := range sink.events {
		var bg uint8
		if e.BreakGlass {
			bg = 1
		}
		rows = append(rows, []any{uuid.MustParse(e.EventID), time.UnixMilli(e.TsMs).UTC().Truncate(time.Second), e.TsMs, e.ReceivedMs,
			e.Vendor, e.SiteID, e.ZoneID, e.DoorID, e.LockID, e.SubjectID, e.CredentialID, e.DeviceID, e.Attested, e.Action, e.Outcome,
			e.Method, e.Reason, e.VendorCode, bg, e.RawRef, e.TsMs, e.LockModel, e.LockFirmware, e.PhoneModel, e.OSName, e.OSVersion,
			e.AppVersion})
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", cols, rows...))

	rules := detect.DefaultRules().Detectors.Regression
	began := time.Now()
	alerts, err := regression.Alerts(ctx, conn, &rules, end)
	require.NoError(t, err)
	t.Logf("regression over %d events, 4 dimensions: %s", len(rows), time.Since(began).Round(time.Millisecond))
	var found *detect.Alert
	for i, a := range alerts {
		t.Logf("alert: %s", a.Explanation)
		if strings.Contains(a.Explanation, "os_version ios 18.4") {
			found = &alerts[i]
		}
		assert.NotContains(t, a.Explanation, "os_version android", "no Android version regressed")
	}
	require.NotNil(t, found, "the planted regression is found by OS version")
	assert.Contains(t, found.Explanation, "were at lock firmware 4.2.1")
	assert.NotEmpty(t, found.Evidence)
	require.NoError(t, alertstore.New(conn).Put(ctx, alerts))

	r, err := report.Generate(ctx, conn, report.Query{Week: report.WeekOf(at), Now: end})
	require.NoError(t, err)
	var byOS *report.Slices
	for i := range r.Slices {
		if r.Slices[i].Dimension == "os_version" {
			byOS = &r.Slices[i]
		}
	}
	require.NotNil(t, byOS, "the report has an access table by OS version")
	var new, old *report.SliceRow
	for i, row := range byOS.Rows {
		switch row.Key {
		case "ios 18.4":
			new = &byOS.Rows[i]
		case "ios 18.2":
			old = &byOS.Rows[i]
		}
	}
	require.NotNil(t, new)
	require.NotNil(t, old)
	assert.Greater(t, *new.Values[2], 5*(*old.Values[2]+1), "denied %% of the new iOS version against the old")
	var det *report.DetectorCount
	for i := range r.Anomalies.Detectors {
		if r.Anomalies.Detectors[i].Detector == detect.Regression {
			det = &r.Anomalies.Detectors[i]
		}
	}
	require.NotNil(t, det, "the report counts the regression alert")
	require.NotEmpty(t, r.Regressions, "the report lists the regression alerts")
	assert.Contains(t, r.Regressions[0].Explanation, "ios 18.4")
}
