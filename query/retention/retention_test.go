package retention

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Every table a policy reaches is a word drop_partition.sql allows.
func TestDropPartitionAllowsEveryTable(t *testing.T) {
	for _, table := range Tables {
		for _, tb := range append([]string{table}, Derived[table]...) {
			_, _, err := dropPartitionSQL.Bind(chstorage.Args{"table": tb, "partition": "202401"})
			assert.NoError(t, err, tb)
		}
	}
}
