package estate

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/capabilities.md")

var docsPath = filepath.Join("..", "docs", "capabilities.md")

func TestDocsAreCurrent(t *testing.T) {
	got := DefaultPolicy().Docs()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(docsPath), 0o755))
		require.NoError(t, os.WriteFile(docsPath, got, 0o644))
		return
	}
	want, err := os.ReadFile(docsPath)
	require.NoError(t, err, "docs/capabilities.md is missing: go test ./estate -update")
	assert.Equal(t, string(want), string(got), "docs/capabilities.md differs from the matrix: go test ./estate -update")
}
