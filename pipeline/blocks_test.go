package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
)

// TestBlockEnds: blocks are cut at the row limit, and before a row that
// would make a block touch more partitions than the limit.
func TestBlockEnds(t *testing.T) {
	same := func(int) uint32 { return 202612 }
	months := func(i int) uint32 { return uint32(i) } // every row its own partition
	alternating := func(i int) uint32 { return uint32(i % 2) }
	for _, tc := range []struct {
		name          string
		n, rows, part int
		partition     func(int) uint32
		want          []int
	}{
		{"empty", 0, 8192, 100, same, nil},
		{"one block", 10, 8192, 100, same, []int{10}},
		{"row limit", 20, 8, 100, same, []int{8, 16, 20}},
		{"exact row limit", 16, 8, 100, same, []int{8, 16}},
		{"no partition bound", 20, 8, 1, nil, []int{8, 16, 20}},
		{"partition limit", 10, 8192, 3, months, []int{3, 6, 9, 10}},
		{"both limits", 10, 4, 3, months, []int{3, 6, 9, 10}},
		{"repeated partitions stay together", 10, 8192, 2, alternating, []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, blockEnds(tc.n, tc.rows, tc.part, tc.partition))
		})
	}
}

// TestAccessRowsBlocksSpanningYears: a batch of events over 30 years (360
// months) is sent in blocks of at most 100 months each (ClickHouse's
// default max_partitions_per_insert_block), every row exactly once.
func TestAccessRowsBlocksSpanningYears(t *testing.T) {
	rows := NewAccessRows(nil)
	start := time.Date(1996, 1, 15, 12, 0, 0, 0, time.UTC)
	rows.window = event.TimeWindow{Min: start.AddDate(-1, 0, 0), Ahead: time.Hour}
	rows.now = func() time.Time { return start.AddDate(31, 0, 0) }
	for i := range 360 {
		ts := start.AddDate(0, i, 0)
		e := event.Access{EventID: event.ID("matter", ts.String()), TsMs: ts.UnixMilli(), ReceivedMs: ts.UnixMilli(),
			Vendor: "matter", Action: "unlock", Outcome: "granted"}
		require.NoError(t, rows.AppendEvent(&e))
	}
	ends := blockEnds(rows.Len(), insertBlockRows, maxBlockPartitions, rows.PartitionOf)
	assert.Equal(t, []int{100, 200, 300, 360}, ends)
	assert.Equal(t, uint32(199601), rows.PartitionOf(0))
	assert.Equal(t, uint32(202512), rows.PartitionOf(359))
}
