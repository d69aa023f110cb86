package scim

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

type tokens map[string]httpapi.Role

func (t tokens) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	r, ok := t[token]
	if !ok {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	return httpapi.Principal{Name: string(r), Role: r}, nil
}

// TestConformance runs scripts/scim-check.sh (scim2-tester from PyPI)
// against the routes served on a loopback port with the in-memory store.
// Skipped without python3; a failing check fails the test.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs scim2-tester")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	svc, err := New(Options{Store: NewMemoryStore(), Subject: func(s string) string { return "subj-" + s }})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: tokens{"idp-token": RoleSCIM}}, svc.Routes())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	ctx2, cancel2 := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel2()
	script, err := filepath.Abs("../../scripts/scim-check.sh")
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx2, "bash", script, "http://"+ln.Addr().String()+Prefix, "idp-token")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	t.Logf("scim-check output:\n%s", out)
	require.NoError(t, err, "scim2-tester reported failing checks (output above)")
}
