package event

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIDBytesMatchesID(t *testing.T) {
	for _, id := range []string{"", "0x1A2B#4711", "5f3b2c", strings.Repeat("x", 300)} {
		for _, vendor := range Vendors {
			assert.Equal(t, ID(vendor, id), IDBytes(vendor, []byte(id)), "%s %q", vendor, id)
		}
	}
}

func FuzzIDBytes(f *testing.F) {
	f.Add("nuki", "5f3b2c")
	f.Fuzz(func(t *testing.T, vendor, id string) {
		if ID(vendor, id) != IDBytes(vendor, []byte(id)) {
			t.Fatalf("IDBytes(%q, %q) differs from ID", vendor, id)
		}
	})
}
