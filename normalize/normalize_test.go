package normalize

import (
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/stretchr/testify/assert"
)

func TestRefHashPooledMatchesRefHash(t *testing.T) {
	n := New(nil, nil, []byte("some-key"))
	for i := 0; i < 3; i++ { // reused states give the same hashes
		for _, c := range [][2]string{{"matter", "3"}, {"nuki", "6566dd0ec3a4f22e5c0d9a01"}, {"legacy", "00123456"}, {"", ""}} {
			assert.Equal(t, event.RefHash([]byte("some-key"), c[0], c[1]), n.refHash(c[0], c[1]))
		}
	}
}
