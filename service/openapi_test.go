package service

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// waitControlReady waits until the control plane has rebuilt its state
// (its routes answer 503 starting until then).
func waitControlReady(t *testing.T, base, token string) {
	t.Helper()
	require.Eventually(t, func() bool {
		code, _ := call(t, "GET", base+"/v1/templates", token, "")
		return code == 200
	}, 60*time.Second, 100*time.Millisecond)
}

// The document serve builds describes every route completely: a request
// body schema for every write operation, a success response with content
// for every route (openapi.Check). KEYFLEET_OPENAPI_OUT=file also writes
// the document there.
func TestServeOpenAPIComplete(t *testing.T) {
	base, admin := serveForTest(t)
	waitControlReady(t, base, admin)
	code, doc := call(t, "GET", base+"/v1/openapi.json", admin, "")
	require.Equal(t, 200, code, string(doc))
	if out := os.Getenv("KEYFLEET_OPENAPI_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, doc, 0o644))
	}
	problems, err := openapi.Check(doc)
	require.NoError(t, err)
	assert.Empty(t, problems, "incomplete operations:\n%s", strings.Join(problems, "\n"))
}
