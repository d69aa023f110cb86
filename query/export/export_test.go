package export_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/query/export"
)

func batch(n int) *export.Batch {
	b := &export.Batch{}
	for i := 0; i < n; i++ {
		b.EventID.Append(fmt.Sprintf("6f1c3a7e-0000-5000-8000-%012d", i))
		b.TsMs = append(b.TsMs, 1_770_000_000_000+int64(i))
		b.ReceivedMs = append(b.ReceivedMs, 1_770_000_000_800+int64(i))
		for j := range b.Str {
			b.Str[j].Append(fmt.Sprintf("%s-%d", export.StringColumns[j], i%50))
		}
		b.BreakGlass = append(b.BreakGlass, i%97 == 0)
	}
	return b
}

func TestArrowStreamRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := export.NewWriter(export.Arrow, &buf, false)
	require.NoError(t, err)
	require.NoError(t, w.Write(batch(10)))
	require.NoError(t, w.Write(batch(5)))
	require.NoError(t, w.Close())
	r, err := ipc.NewReader(&buf)
	require.NoError(t, err)
	defer r.Release()
	rows := 0
	for r.Next() {
		rec := r.Record()
		require.True(t, rec.Schema().Equal(export.Schema(false)))
		want := batch(int(rec.NumRows()))
		for i := 0; i < int(rec.NumRows()); i++ {
			require.Equal(t, want.EventID.Value(i), rec.Column(0).(*array.String).Value(i))
			require.Equal(t, want.TsMs[i], rec.Column(2).(*array.Int64).Value(i))
			for j := range export.StringColumns {
				require.Equal(t, want.Str[j].Value(i), rec.Column(4+j).(*array.String).Value(i))
			}
			require.Equal(t, want.BreakGlass[i], rec.Column(4+len(export.StringColumns)).(*array.Boolean).Value(i))
		}
		rows += int(rec.NumRows())
	}
	require.Equal(t, 15, rows)
}

// BenchmarkWriter measures the encoders alone (rows/s), without ClickHouse.
func BenchmarkWriter(b *testing.B) {
	const rows = 64 << 10
	in := batch(rows)
	for _, format := range export.Formats {
		b.Run(format, func(b *testing.B) {
			w, err := export.NewWriter(format, io.Discard, false)
			require.NoError(b, err)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				require.NoError(b, w.Write(in))
			}
			require.NoError(b, w.Close())
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func TestStringsEmptyValues(t *testing.T) {
	var s export.Strings
	for _, v := range []string{"", "a", "", "bc", ""} {
		s.Append(v)
	}
	require.Equal(t, 5, s.Len())
	require.Equal(t, []string{"", "a", "", "bc", ""}, []string{s.Value(0), s.Value(1), s.Value(2), s.Value(3), s.Value(4)})
	s.Reset()
	require.Equal(t, 0, s.Len())
}
