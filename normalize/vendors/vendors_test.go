package vendors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

var docsPath = filepath.Join("..", "..", "docs", "vendors.md")

func TestDocsAreCurrent(t *testing.T) {
	got := Docs()
	if *adaptertest.Update {
		require.NoError(t, os.MkdirAll(filepath.Dir(docsPath), 0o755))
		require.NoError(t, os.WriteFile(docsPath, got, 0o644))
		return
	}
	want, err := os.ReadFile(docsPath)
	require.NoError(t, err, "docs/vendors.md is missing: go test ./normalize/vendors -update")
	assert.Equal(t, string(want), string(got), "docs/vendors.md differs from the adapters' tables: go test ./normalize/vendors -update")
}

func TestEveryVendorHasAnAdapter(t *testing.T) {
	adapters := Adapters()
	for _, v := range event.Vendors {
		a, ok := adapters[v]
		require.True(t, ok, "no adapter for %s", v)
		_, documented := a.(normalize.Documented)
		_, described := a.(normalize.Described)
		assert.True(t, documented && described, "%s is not documented", v)
	}
	assert.Len(t, adapters, len(event.Vendors))
}
