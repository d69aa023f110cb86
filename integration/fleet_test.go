package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// The simulated estate registers its credentials with the control plane
// (through credential.events); revoking a subject through the API sends a
// revoke command to every lock holding its credentials, the gateway
// simulators apply and acknowledge them, and the revocation resource shows
// every lock confirmed.
func TestSimulatedFleetRevocationRoundTrip(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	dir := t.TempDir()
	regPath := filepath.Join(dir, "registry.json")
	fleetFlags := []string{"--seed", "3", "--sites", "1", "--doors-per-site", "30", "--subjects", "60"}
	kafkaFlags := []string{"--kafka-brokers", strings.Join(cfg.Brokers, ","), "--topic-prefix", cfg.TopicPrefix}
	env := append(os.Environ(), "KEYFLEET_PSEUDONYM_KEY=integration-test-pseudonym-key")

	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	run(append(append([]string{"simulate"}, fleetFlags...), "--registry-only", "--registry-out", regPath)...)
	p := startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database, extra: []string{"--registry", regPath}})
	run(append(append(append([]string{"simulate"}, fleetFlags...), kafkaFlags...), "--days", "1", "--log-level", "warn")...)

	gw := exec.Command(binary(t), append(append(append([]string{"simulate", "gateways"}, fleetFlags...), kafkaFlags...),
		"--duration", "2m", "--gateway-profile", "legacy.latency=500ms,legacy.miss=0,matter.offline=0,nuki.offline=0,schlage.offline=0,seam.offline=0,legacy.offline=0")...)
	gw.Env = env
	gwOut := &testenv.SyncBuffer{}
	gw.Stdout, gw.Stderr = gwOut, gwOut
	require.NoError(t, gw.Start())
	t.Cleanup(func() {
		_ = gw.Process.Kill()
		_ = gw.Wait()
		if t.Failed() {
			t.Logf("gateways:\n%s", gwOut.String())
		}
	})

	// A resident of the estate, as the registry file names it.
	data, err := os.ReadFile(regPath)
	require.NoError(t, err)
	var file registry.File
	require.NoError(t, json.Unmarshal(data, &file))
	require.NotEmpty(t, file.Credentials)
	subject := file.Credentials[0].SubjectID
	credential := file.Credentials[0].CredentialID

	var view struct {
		Credential struct {
			State  string            `json:"state"`
			Issuer string            `json:"issuer"`
			Locks  []json.RawMessage `json:"locks"`
		} `json:"credential"`
	}
	cred := &view.Credential
	require.Eventually(t, func() bool {
		resp, body := p.do("GET", "/v1/credentials/"+credential, "", nil, p.token)
		if resp.StatusCode != http.StatusOK {
			return false
		}
		require.NoError(t, json.Unmarshal(body, &view), string(body))
		return true
	}, time.Minute, 200*time.Millisecond, "the control plane should know the simulated credential")
	require.NotEmpty(t, cred.Locks, "the credential's locks are known")
	assert.Equal(t, "simulator", cred.Issuer)

	resp, body := p.do("POST", "/v1/subjects/"+subject+":revoke", "application/json", strings.NewReader(`{"reason":"integration test move-out"}`), p.token)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var rv struct {
		RevocationURL string `json:"revocation_url"`
	}
	require.NoError(t, json.Unmarshal(body, &rv))

	var status struct {
		Status         string            `json:"status"`
		ConfirmedLocks []json.RawMessage `json:"confirmed_locks"`
		PendingLocks   []json.RawMessage `json:"pending_locks"`
	}
	require.Eventually(t, func() bool {
		resp, body := p.do("GET", rv.RevocationURL, "", nil, p.token)
		if resp.StatusCode != http.StatusOK {
			return false
		}
		require.NoError(t, json.Unmarshal(body, &status), string(body))
		return status.Status == "confirmed"
	}, 90*time.Second, 250*time.Millisecond, "every lock should confirm the revocation")
	assert.Empty(t, status.PendingLocks)
	assert.GreaterOrEqual(t, len(status.ConfirmedLocks), len(cred.Locks))

	// The acknowledgements are stored for the KPIs.
	var acks uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM lock_acks WHERE status = 'applied'").Scan(&acks))
	assert.GreaterOrEqual(t, acks, uint64(len(cred.Locks)))
}
