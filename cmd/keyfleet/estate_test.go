package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate/migrate"
)

// fakeEstateAPI answers the migration routes: the plan, then a migration
// that confirms on the second poll (or never, with a straggler).
func fakeEstateAPI(t *testing.T, confirms bool) *httptest.Server {
	var polls atomic.Int32
	k1, n1 := control.LockRef{Vendor: "seam", LockID: "k1"}, control.LockRef{Vendor: "nuki", LockID: "n1"}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/estate/migrations":
			var req migrate.Request
			require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
			require.Equal(t, []migrate.LockMap{{From: "k1", To: "n1", Model: "smart-lock-4-pro"}}, req.Locks)
			out := migrate.Started{Credentials: 2, DryRun: r.URL.Query().Get("dry_run") == "true"}
			if !out.DryRun {
				out.MigrationID, out.StatusURL = "mg1", "/v1/estate/migrations/mg1"
			}
			_ = json.NewEncoder(w).Encode(out)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/estate/migrations/mg1":
			st := migrate.Status{Head: migrate.Head{MigrationID: "mg1", FromVendor: "seam", ToVendor: "nuki"}, Total: 2,
				Locks:      []migrate.LockProgress{{From: k1, To: n1, Credentials: 2, Granted: 2, Revoked: 1, Status: migrate.StatusPending}},
				Stragglers: []migrate.Straggler{{CredentialID: "c2", Vendor: "seam", LockID: "k1", Command: "revoke", AgeMs: 1500}},
				Status:     migrate.StatusPending, Moved: 1}
			if confirms && polls.Add(1) > 1 {
				st.Status, st.Moved, st.Stragglers, st.TimeToConfirmMs = migrate.StatusConfirmed, 2, nil, 1800
				st.Locks[0].Revoked, st.Locks[0].Status = 2, migrate.StatusConfirmed
			}
			_ = json.NewEncoder(w).Encode(st)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","detail":"no route"}`))
		}
	}))
}

func TestEstateMigrateCommand(t *testing.T) {
	locks := filepath.Join(t.TempDir(), "locks.csv")
	require.NoError(t, os.WriteFile(locks, []byte("from_lock_id,to_lock_id,model\nk1,n1,smart-lock-4-pro\n"), 0o644))
	runEstateCLI := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"estate"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, _, stderr := runEstateCLI()
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "migrate, import, export or weak-links")
	code, _, stderr = runEstateCLI("migrate", "--from-vendor", "seam", "--to-vendor", "nuki", "--locks", locks)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--token")

	srv := fakeEstateAPI(t, true)
	defer srv.Close()
	base := []string{"migrate", "--url", srv.URL, "--token", "tok", "--from-vendor", "seam", "--to-vendor", "nuki", "--locks", locks}
	code, stdout, stderr := runEstateCLI(append(base, "--dry-run")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, `"dry_run": true`)
	assert.Contains(t, stderr, "seam → nuki: 0 locks, 2 credentials to move")

	code, stdout, stderr = runEstateCLI(append(base, "--wait", "30s")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "migration mg1 started")
	assert.Contains(t, stderr, "1 of 2 credentials moved and confirmed, 1 lock commands pending")
	assert.Contains(t, stdout, "vendor migration mg1: seam → nuki, confirmed")
	assert.Contains(t, stdout, "stragglers: none")

	never := fakeEstateAPI(t, false)
	defer never.Close()
	base[2] = never.URL
	code, stdout, stderr = runEstateCLI(append(base, "--wait", "1500ms")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "revoke on seam/k1 pending 2s (credential c2)")
	assert.Contains(t, stderr, "not confirmed after 1.5s: 1 lock commands pending")
}
