package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/identity/scim"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

type feedAuth struct{}

func (feedAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if token == "hr-token" {
		return httpapi.Principal{TokenID: "t", Name: "hr", Role: httpapi.RoleSCIM}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

type auditLog struct{ entries []audit.Entry }

func (a *auditLog) Append(_ context.Context, e audit.Entry) error {
	a.entries = append(a.entries, e)
	return nil
}

// TestIdentityImport runs `keyfleet identity import` against the import
// route (a SCIM service on the in-memory store): a dry run prints the plan,
// the import applies it, a malformed file is refused with its row.
func TestIdentityImport(t *testing.T) {
	svc, err := scim.New(scim.Options{Store: scim.NewMemoryStore(), Subject: func(s string) string { return "sub-" + s },
		SubjectFromExternalID: true})
	require.NoError(t, err)
	log := &auditLog{}
	srv, err := httpapi.New(httpapi.Options{Auth: feedAuth{}}, (&feed.API{Target: svc, Audit: log}).Routes())
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
	dir := t.TempDir()
	file := filepath.Join(dir, "people.csv")
	require.NoError(t, os.WriteFile(file, []byte("external_id,user_name,site,groups\n"+
		"e1,pat@example.com,site-a,resident\ne2,kim@example.com,site-a,staff;Front desk\n"), 0o600))
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code := run(ctx, append([]string{"identity", "import"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	base := "http://" + ln.Addr().String()

	code, out, errOut := cli(file, "--url", base, "--token", "hr-token", "--dry-run")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "feed hr (full), 2 people in the file — dry run: nothing changed")
	assert.Contains(t, out, "joiners 2, movers 0, leavers 0")
	assert.Regexp(t, `e2\s+sub-e2\s+create\s+joined\s+\S+\s+\+Front desk \+staff`, out)
	assert.Contains(t, out, `group "resident" is created: +1 -0`)
	assert.Empty(t, log.entries, "a dry run is not audited")

	code, out, errOut = cli("--url", base, "--token", "hr-token", file)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "— applied")
	users, err := svc.Records(context.Background(), scim.TypeUser)
	require.NoError(t, err)
	assert.Len(t, users, 2)
	require.Len(t, log.entries, 1)
	assert.Equal(t, "identity.import", log.entries[0].Action)
	assert.Equal(t, "hr", log.entries[0].Actor)

	code, out, _ = cli(file, "--url", base, "--token", "hr-token", "--dry-run")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "unchanged or not entitled 2")

	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("external_id,salary\ne1,1\n"), 0o600))
	code, _, errOut = cli(bad, "--url", base, "--token", "hr-token")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown column "salary"`)
	code, _, errOut = cli(file, "--url", base, "--token", "wrong")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "401")
}
