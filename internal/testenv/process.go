package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// KeyfleetBinary returns the keyfleet binary tests run as a separate
// process: $KEYFLEET_BIN when set, else cmd/keyfleet built into t's
// temporary directory.
func KeyfleetBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYFLEET_BIN"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "keyfleet")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/keyfleet/keyfleet/cmd/keyfleet").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// FreeAddr returns a loopback address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// SyncBuffer collects a child process's output; safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
