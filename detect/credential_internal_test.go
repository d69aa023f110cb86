package detect

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A grant keeps its event id in binary only when it formats back to the
// same text.
func TestGrantEventID(t *testing.T) {
	for _, id := range []string{"6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20", "6F1C6A0E-2B4C-4B8E-9D51-0C1F3A7E9B20",
		"00000000-0000-0000-0000-000000000000", "e1", "", "urn:uuid:6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20",
		"{6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b2}"} {
		id16, ok := compactID(id)
		g := grant{id: id16}
		if !ok {
			g.idText = &id
		}
		assert.Equal(t, id, g.eventID(), id)
	}
	_, ok := compactID("6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20")
	assert.True(t, ok)
}
