package query_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query"
)

// sliceFixture loads a small fleet with device and lock dimensions:
// events at two sites (the iOS 19.0 phones denied at firmware 4.2.1),
// credentials activated on phones, and revocations acknowledged by locks
// of two firmwares.
func sliceFixture(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	cols := append(chstorage.AccessEvents.ColumnNames()[:0:0], chstorage.AccessEvents.ColumnNames()...)
	var rows [][]any
	n := 0
	add := func(at time.Time, site, vendor, model, fw, phone, os, osv, app, outcome, reason string, dup bool) {
		n++
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("slice-%d", n)))
		ms := at.UnixMilli()
		vals := map[string]any{"event_id": id, "ts": at.UTC().Truncate(time.Second), "ts_ms": ms, "received_ms": ms, "vendor": vendor,
			"site_id": site, "door_id": "door-" + site, "lock_id": "lock-" + fw, "subject_id": "subj", "credential_id": "cred",
			"device_id": "dev", "attested": "attested", "action": "unlock", "outcome": outcome, "method": "phone_nfc", "reason": reason,
			"break_glass": uint8(0), "inserted_ms": ms, "lock_model": model, "lock_firmware": fw, "phone_model": phone, "os_name": os,
			"os_version": osv, "app_version": app}
		if outcome == "denied" {
			vals["action"] = "access_denied"
		}
		row := make([]any, len(cols))
		for i, c := range cols {
			v, ok := vals[c]
			if !ok {
				v = ""
			}
			row[i] = v
		}
		rows = append(rows, row)
		if dup {
			rows = append(rows, row)
		}
	}
	at := e.now.Add(-24 * time.Hour)
	for i := 0; i < 20; i++ {
		ts := at.Add(time.Duration(i) * time.Minute)
		add(ts, "site-1", "nuki", "smart-lock-4-pro", "4.2.1", "iPhone 16", "ios", "18.2", "2026.11.1", "granted", "", i == 0)
		add(ts, "site-2", "matter", "door-lock", "1.3.0", "Pixel 9", "android", "16", "2026.11.1", "granted", "", false)
		outcome, reason := "denied", "invalid_credential"
		if i >= 15 {
			outcome, reason = "granted", ""
		}
		add(ts, "site-1", "nuki", "smart-lock-4-pro", "4.2.1", "iPhone 17", "ios", "19.0", "2026.11.1", outcome, reason, false)
	}
	add(at, "site-2", "matter", "door-lock", "1.3.0", "Pixel 9", "android", "16", "2026.11.1", "denied", "outside_schedule", false)
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "access_events", cols, rows...))

	// Credentials: three issued at site-1 (two activated on iOS 18.2 and
	// 19.0), one at site-2 never activated.
	credCols := []string{"credential_id", "seq", "ts", "ts_ms", "op", "state", "site_id", "attested", "requested_ms", "issued_ms",
		"phone_model", "os_name", "os_version", "app_version", "device_facts"}
	cred := func(id string, seq uint64, op, state, site string, attested uint8, req, iss int64, phone, os, osv string) []any {
		ts := at.Add(time.Duration(seq) * time.Minute)
		return []any{id, seq, ts.UTC().Truncate(time.Second), ts.UnixMilli(), op, state, site, attested, req, iss, phone, os, osv, "2026.11.1", "app_reported"}
	}
	base := at.UnixMilli()
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "credential_events", credCols,
		cred("c1", 1, "issue", "pending_activation", "site-1", 0, base-60_000, base, "", "", ""),
		cred("c1", 2, "activate", "active", "site-1", 1, base-60_000, base, "iPhone 16", "ios", "18.2"),
		cred("c2", 1, "issue", "pending_activation", "site-1", 0, base-120_000, base, "", "", ""),
		cred("c2", 2, "activate", "active", "site-1", 1, base-120_000, base, "iPhone 17", "ios", "19.0"),
		cred("c3", 1, "issue", "pending_activation", "site-1", 0, base-30_000, base, "", "", ""),
		cred("c4", 1, "issue", "pending_activation", "site-2", 0, base-10_000, base, "", "", ""),
	))

	// One revocation acknowledged by a 4.2.1 lock after 2 s and a 1.3.0 lock after 8 s.
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "revocations",
		[]string{"revocation_id", "credential_id", "ts", "requested_ms", "disabled_ms", "locks_total"},
		[]any{"r1", "c1", at.UTC().Truncate(time.Second), base, base + 100, uint32(2)}))
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "lock_acks",
		[]string{"command_id", "revocation_id", "type", "vendor", "lock_id", "credential_id", "status", "ts", "applied_ms"},
		[]any{"k1", "r1", "revoke", "nuki", "lock-4.2.1", "c1", "applied", at.UTC().Truncate(time.Second), base + 2000},
		[]any{"k2", "r1", "revoke", "matter", "lock-1.3.0", "c1", "applied", at.UTC().Truncate(time.Second), base + 8000}))
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "lock_registry",
		[]string{"vendor", "lock_id", "version", "ts", "site_id", "model", "firmware"},
		[]any{"nuki", "lock-4.2.1", uint64(1), at.UTC().Truncate(time.Second), "site-1", "smart-lock-4-pro", "4.2.1"},
		[]any{"matter", "lock-1.3.0", uint64(1), at.UTC().Truncate(time.Second), "site-2", "door-lock", "1.3.0"}))
}

type slicedKPIs struct {
	Access *struct {
		Events uint64 `json:"events"`
	} `json:"access"`
	Slice     string              `json:"slice"`
	Filters   map[string][]string `json:"filters"`
	Total     query.SliceKPIs     `json:"total"`
	Slices    []query.SliceKPIs   `json:"slices"`
	NotSliced map[string]string   `json:"not_sliced"`
}

func (k slicedKPIs) slice(t *testing.T, key string) query.SliceKPIs {
	t.Helper()
	for _, s := range k.Slices {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no slice %q in %+v", key, k.Slices)
	return query.SliceKPIs{}
}

// TestKPISlices: GET /v1/kpis cut by OS version, lock firmware and site,
// filtered by vendor (which used to be a 400), and seen by a site-scoped
// token (its sites only, no fleet-wide blocks).
func TestKPISlices(t *testing.T) {
	e := newEnv(t)
	sliceFixture(t, e)
	get := func(role httpapi.Role, q url.Values) slicedKPIs {
		t.Helper()
		q.Set("from", ms(e.now.Add(-3*24*time.Hour)))
		q.Set("to", ms(e.now))
		r := e.do("GET", "/v1/kpis?"+q.Encode(), role, "")
		require.Equal(t, 200, r.status, string(r.body))
		var out slicedKPIs
		r.json(t, &out)
		return out
	}

	k := get(httpapi.RoleManager, url.Values{"slice": {"os_version"}})
	require.NotNil(t, k.Access, "an unscoped caller still gets the fleet-wide blocks")
	assert.Equal(t, "os_version", k.Slice)
	assert.EqualValues(t, 61, k.Total.Events, "distinct events despite a re-delivery")
	ios19 := k.slice(t, "ios 19.0")
	assert.EqualValues(t, 20, ios19.Events)
	assert.EqualValues(t, 15, ios19.Denied)
	assert.InDelta(t, 0.75, *ios19.DeniedShare, 1e-9)
	assert.EqualValues(t, 15, ios19.SupportFailures)
	require.NotNil(t, ios19.Activation)
	assert.EqualValues(t, 1, ios19.Activation.Activated)
	ios18 := k.slice(t, "ios 18.2")
	assert.EqualValues(t, 0, ios18.Denied)
	assert.InDelta(t, 0.0, *ios18.DeniedShare, 1e-9)
	android := k.slice(t, "android 16")
	assert.EqualValues(t, 1, android.Denied)
	assert.EqualValues(t, 0, android.SupportFailures, "a schedule denial is policy, not a failure")
	unknown := k.slice(t, "")
	require.NotNil(t, unknown.Activation, "credentials not activated yet have no phone")
	assert.EqualValues(t, 2, unknown.Activation.Issued)
	assert.Nil(t, ios19.RevocationLatency, "revocation latency is per lock")
	assert.Contains(t, k.NotSliced, "revocation_latency")
	require.NotNil(t, k.Total.Activation)
	assert.EqualValues(t, 4, k.Total.Activation.Issued)
	assert.EqualValues(t, 2, k.Total.Activation.Activated)
	require.NotNil(t, k.Total.RevocationLatency)
	assert.EqualValues(t, 2, k.Total.RevocationLatency.Count)

	k = get(httpapi.RoleManager, url.Values{"slice": {"lock_firmware"}})
	fw := k.slice(t, "4.2.1")
	assert.EqualValues(t, 40, fw.Events)
	require.NotNil(t, fw.RevocationLatency)
	assert.InDelta(t, 2.0, fw.RevocationLatency.P50, 1e-9)
	assert.InDelta(t, 8.0, k.slice(t, "1.3.0").RevocationLatency.P50, 1e-9)
	assert.Nil(t, fw.Activation)

	k = get(httpapi.RoleManager, url.Values{"vendor": {"nuki"}})
	assert.Equal(t, map[string][]string{"vendor": {"nuki"}}, k.Filters)
	assert.EqualValues(t, 40, k.Total.Events)
	assert.Empty(t, k.Slices)
	assert.Nil(t, k.Total.Activation, "a credential spans vendors")
	require.NotNil(t, k.Total.RevocationLatency)
	assert.EqualValues(t, 1, k.Total.RevocationLatency.Count)

	k = get(httpapi.RoleManager, url.Values{"slice": {"site"}, "os_version": {"19.0"}})
	assert.EqualValues(t, 20, k.slice(t, "site-1").Events)
	require.Len(t, k.Slices, 1)

	// A site-scoped manager sees its site only, and no fleet-wide block.
	secret, err := auth.NewSecret()
	require.NoError(t, err)
	_, err = e.store.Put(context.Background(), auth.Spec{Name: "site-2 manager", Role: httpapi.RoleManager, Sites: []string{"site-2"}}, secret)
	require.NoError(t, err)
	r := e.doToken("GET", "/v1/kpis?slice=site&from=now-3d", secret, "")
	require.Equal(t, 200, r.status, string(r.body))
	var scoped slicedKPIs
	r.json(t, &scoped)
	assert.Nil(t, scoped.Access)
	require.Len(t, scoped.Slices, 1)
	assert.Equal(t, "site-2", scoped.Slices[0].Key)
	assert.EqualValues(t, 21, scoped.Total.Events)
	r = e.doToken("GET", "/v1/kpis?site=site-1", secret, "")
	require.Equal(t, 403, r.status)
	assert.Equal(t, "out_of_scope", r.problem(t).Code)

	require.Equal(t, 400, e.do("GET", "/v1/kpis?slice=door", httpapi.RoleManager, "").status)
}
