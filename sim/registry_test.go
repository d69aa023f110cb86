package sim_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// The streamed registry file is the file WriteRegistry writes of the
// fleet's whole registry, byte for byte.
func TestWriteFleetRegistry(t *testing.T) {
	dir := t.TempDir()
	for _, subjects := range []int{8, 300} {
		f, err := fleet.Generate(fleet.Options{Seed: 3, Sites: 2, DoorsPerSite: 40, Subjects: subjects, SpareDevices: 2})
		require.NoError(t, err)
		whole, streamed := filepath.Join(dir, "whole.json"), filepath.Join(dir, "streamed.json")
		require.NoError(t, sim.WriteRegistry(whole, f.Registry()))
		require.NoError(t, sim.WriteFleetRegistry(streamed, f))
		want, err := os.ReadFile(whole)
		require.NoError(t, err)
		got, err := os.ReadFile(streamed)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%d subjects", subjects)
	}
}
