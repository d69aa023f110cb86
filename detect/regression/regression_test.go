package regression_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/regression"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// load writes three days of attempts: iPhones on iOS 18.2 at two lock
// firmwares all along (one denial in fifty), and from 8 hours ago phones
// on the new iOS 19.0, denied at firmware 4.2.1 only.
func load(t *testing.T, conn driver.Conn) {
	t.Helper()
	cols := append(append([]string(nil), pipeline.AccessColumns...), pipeline.DimensionColumns...)
	var rows [][]any
	n := 0
	add := func(at time.Time, osv, fw, outcome string) {
		n++
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("reg-%d", n)))
		ms := at.UnixMilli()
		action := "unlock"
		if outcome == "denied" {
			action = "access_denied"
		}
		row := []any{id, at.UTC().Truncate(time.Second), ms, ms, "nuki", "site-1", "z", "door-" + fw, "lock-" + fw,
			"subj", "cred", "dev", "attested", action, outcome, "phone_nfc", "", "", uint8(0), "", ms,
			"smart-lock-4-pro", fw, "iPhone", "ios", osv, "2026.11.1"}
		if outcome == "denied" {
			row[16] = "invalid_credential"
		}
		rows = append(rows, row)
	}
	for m := 3 * 24 * 60; m > 0; m -= 10 { // every 10 minutes for 3 days
		at := now.Add(-time.Duration(m) * time.Minute)
		for _, fw := range []string{"4.2.1", "1.3.0"} {
			outcome := "granted"
			if (m/10)%50 == 0 {
				outcome = "denied"
			}
			add(at, "18.2", fw, outcome)
			if at.After(now.Add(-8 * time.Hour)) {
				outcome = "granted"
				if fw == "4.2.1" {
					outcome = "denied"
				}
				add(at.Add(time.Minute), "19.0", fw, outcome)
			}
		}
	}
	require.NoError(t, chstorage.InsertRows(context.Background(), conn, "access_events", cols, rows...))

	// Revocations every hour for 3 days, each acknowledged by a lock on
	// firmware 1.3.0 after 4 s; from 10 hours ago also by a lock on the new
	// firmware 4.3.0, after 90 s.
	var revs, acks [][]any
	for hr := 72; hr > 0; hr-- {
		req := now.Add(-time.Duration(hr) * time.Hour)
		id := fmt.Sprintf("rev-%d", hr)
		revs = append(revs, []any{id, "cred-" + id, req.UTC().Truncate(time.Second), req.UnixMilli(), uint32(2)})
		acks = append(acks, []any{"cmd-a-" + id, id, "revoke", "nuki", "lock-old", "cred-" + id, "applied",
			req.UTC().Truncate(time.Second), req.UnixMilli() + 4000})
		if hr <= 10 {
			acks = append(acks, []any{"cmd-b-" + id, id, "revoke", "nuki", "lock-new", "cred-" + id, "applied",
				req.UTC().Truncate(time.Second), req.UnixMilli() + 90000})
		}
	}
	ctx := context.Background()
	require.NoError(t, chstorage.InsertRows(ctx, conn, "revocations",
		[]string{"revocation_id", "credential_id", "ts", "requested_ms", "locks_total"}, revs...))
	require.NoError(t, chstorage.InsertRows(ctx, conn, "lock_acks",
		[]string{"command_id", "revocation_id", "type", "vendor", "lock_id", "credential_id", "status", "ts", "applied_ms"}, acks...))
	require.NoError(t, chstorage.InsertRows(ctx, conn, "lock_registry",
		[]string{"vendor", "lock_id", "version", "ts", "model", "firmware"},
		[]any{"nuki", "lock-old", uint64(1), now.Add(-30 * 24 * time.Hour), "door-lock", "1.3.0"},
		[]any{"nuki", "lock-new", uint64(1), now.Add(-30 * 24 * time.Hour), "smart-lock-5", "4.3.0"}))
}

// TestRegressionOnClickHouse: the new OS version's denials (half its
// attempts, all at one firmware) raise one regression alert with the
// evidence and the firmware named; the old version and the firmware split
// raise nothing they should not; alerts are produced once.
func TestRegressionOnClickHouse(t *testing.T) {
	bc := testenv.Kafka(t, 1)
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, chstorage.Migrate(ctx, conn, testenv.Logger(t)))
	load(t, conn)

	rules := detect.DefaultRules().Detectors.Regression
	got, err := regression.Alerts(ctx, conn, &rules, now)
	require.NoError(t, err)
	var osAlert *detect.Alert
	for i := range got {
		if got[i].WindowStartMs == now.Add(-8*time.Hour).UnixMilli() {
			osAlert = &got[i]
		}
	}
	require.NotNil(t, osAlert, "alerts: %+v", got)
	assert.Contains(t, osAlert.Explanation, "os_version ios 19.0")
	assert.Contains(t, osAlert.Explanation, "(47 of 94 attempts)")
	assert.Contains(t, osAlert.Explanation, "were at lock firmware 4.2.1")
	assert.InDelta(t, 0.5, osAlert.Observed, 1e-9)
	assert.Len(t, osAlert.Evidence, 20)
	assert.Equal(t, detect.Regression, osAlert.Detector)
	// Firmware 4.2.1's denials rose too (the sliding split sees the new
	// phones' denials): that is the same regression seen from the lock side.
	var latency []string
	for _, a := range got {
		if strings.HasPrefix(a.Explanation, "Revocation latency") {
			latency = append(latency, a.Explanation)
		}
	}
	require.Len(t, latency, 2, "the new firmware and its model: %v", latency)
	assert.Contains(t, latency[0], "lock_firmware 4.3.0 rose to 90.0 s on average (10 locks) since it first appeared")
	assert.Contains(t, latency[1], "lock_model smart-lock-5 rose to 90.0 s")
	for _, a := range got {
		assert.NotContains(t, a.Explanation, "ios 18.2", "the old OS version did not regress")
		assert.NotContains(t, a.Explanation, "lock_firmware 1.3.0", "firmware 1.3.0 did not regress")
	}

	w := bus.NewWriter(bc, bus.TopicAlerts)
	defer w.Close()
	store := alertstore.New(conn)
	newChecker := func() *regression.Checker {
		c, err := regression.New(regression.Options{Conn: conn, Rules: rules, Alerts: w, Known: store,
			Logger: testenv.Logger(t), Now: func() time.Time { return now }})
		require.NoError(t, err)
		return c
	}
	c := newChecker()
	produced, err := c.Check(ctx)
	require.NoError(t, err)
	require.Len(t, produced, len(got))
	again, err := c.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, again, "produced once")
	var onTopic int
	require.NoError(t, bus.ReadTopic(ctx, bc, bus.TopicAlerts, func(m kafka.Message) error {
		var a detect.Alert
		require.NoError(t, json.Unmarshal(m.Value, &a))
		onTopic++
		return nil
	}))
	assert.Equal(t, len(got), onTopic)
	require.NoError(t, store.Put(ctx, produced))
	other, err := newChecker().Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, other, "stored alerts are not produced again by another instance")

	// Too few attempts and acks (minimums above what there is): nothing.
	strict := rules
	strict.MinAttempts, strict.MinLocks = 1000, 1000
	none, err := regression.Alerts(ctx, conn, &strict, now)
	require.NoError(t, err)
	assert.Empty(t, none)
}
