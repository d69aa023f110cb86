package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/testenv"
)

// `keyfleet report` against a fresh database: every format renders, --store
// keeps the report, and command-line mistakes exit 2.
func TestReportCommand(t *testing.T) {
	_, ch := testenv.ClickHouse(t)
	ctx := context.Background()
	base := []string{"report", "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database, "--week", "2026-W47"}
	var out, errOut bytes.Buffer
	code := run(ctx, append(base, "--format", "json", "--store"), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var r struct {
		ID    string `json:"report_id"`
		Weeks []struct {
			Week string `json:"week"`
		} `json:"weeks"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.Equal(t, "2026-W47", r.ID)
	assert.Len(t, r.Weeks, 5)

	path := filepath.Join(t.TempDir(), "r.html")
	out.Reset()
	require.Equal(t, 0, run(ctx, append(base, "--format", "html", "--site", "site-1", "--out", path), &out, &errOut), errOut.String())
	html, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(html), "Fleet health — week 2026-W47 — site site-1")
	assert.Empty(t, out.String())

	for _, bad := range [][]string{{"--format", "pdf"}, {"--week", "2026-W60"}, {"--week", "2999-W01"}, {"extra"}} {
		errOut.Reset()
		assert.Equal(t, 2, run(ctx, append(base, bad...), &out, &errOut), "%v: %s", bad, errOut.String())
	}
}
