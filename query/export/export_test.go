package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
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

// TestCSVMatchesEncodingCSV: the CSV writer writes what encoding/csv
// writes for the same rows, byte for byte: fields that need quotes (comma,
// quote, CR, LF, a leading space of any kind, \.) and ones that do not
// (empty, invalid UTF-8, a space inside), across several batches.
func TestCSVMatchesEncodingCSV(t *testing.T) {
	tricky := []string{"", "plain", "a,b", `say "hi"`, `"`, "line\nbreak", "cr\rlf\r\n", " lead", "\tlead",
		"\u00a0nbsp", "\u2003em", "trail ", "in side", `\.`, `\.x`, "ü", "\xff\xfe", ",", "\"\"", "x\"", "é,\"\n"}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, withRef := range []bool{false, true} {
		var got, want bytes.Buffer
		w, err := export.NewWriter(export.CSV, &got, withRef)
		require.NoError(t, err)
		ref := csv.NewWriter(&want)
		var header []string
		for _, f := range export.Schema(withRef).Fields() {
			header = append(header, f.Name)
		}
		require.NoError(t, ref.Write(header))
		for k := 0; k < 3; k++ {
			b := &export.Batch{}
			for i := 0; i < 500; i++ {
				rec := []string{tricky[rng.IntN(len(tricky))]}
				b.EventID.Append(rec[0])
				ts := rng.Int64N(4_000_000_000_000) - 100_000_000_000
				b.TsMs = append(b.TsMs, ts)
				b.ReceivedMs = append(b.ReceivedMs, -ts)
				rec = append(rec, time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z"),
					strconv.FormatInt(ts, 10), strconv.FormatInt(-ts, 10))
				for j := range b.Str {
					v := tricky[rng.IntN(len(tricky))]
					b.Str[j].Append(v)
					rec = append(rec, v)
				}
				bg := rng.IntN(2) == 0
				b.BreakGlass = append(b.BreakGlass, bg)
				rec = append(rec, strconv.FormatBool(bg))
				if withRef {
					v := tricky[rng.IntN(len(tricky))]
					b.SubjectRef.Append(v)
					rec = append(rec, v)
				}
				require.NoError(t, ref.Write(rec))
			}
			require.NoError(t, w.Write(b))
		}
		require.NoError(t, w.Close())
		ref.Flush()
		require.NoError(t, ref.Error())
		require.Equal(t, want.String(), got.String())
	}
}

// TestParquetRoundTrip: a Parquet file reads back with the export's schema
// and every value, the dictionary-encoded columns and the plain ones, over
// several row groups.
func TestParquetRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := export.NewWriter(export.Parquet, &buf, true)
	require.NoError(t, err)
	in := []*export.Batch{fleetBatch(3000), fleetBatch(1000)}
	for _, b := range in {
		for i := 0; i < b.Len(); i++ {
			b.SubjectRef.Append(fmt.Sprintf("hr:%d", i%7))
		}
		require.NoError(t, w.Write(b))
	}
	require.NoError(t, w.Close())
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1000}, memory.NewGoAllocator())
	require.NoError(t, err)
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	require.NoError(t, err)
	defer rr.Release()
	var k, i int // batch, row in it
	for rr.Next() {
		rec := rr.Record()
		want := export.Schema(true).Fields()
		require.Len(t, rec.Schema().Fields(), len(want))
		for c, f := range rec.Schema().Fields() {
			require.Equal(t, want[c].Name, f.Name)
			require.True(t, arrow.TypeEqual(want[c].Type, f.Type), "%s: %s, want %s", f.Name, f.Type, want[c].Type)
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			want := in[k]
			require.Equal(t, want.EventID.Value(i), rec.Column(0).(*array.String).Value(r))
			require.Equal(t, want.TsMs[i], int64(rec.Column(1).(*array.Timestamp).Value(r)))
			require.Equal(t, want.TsMs[i], rec.Column(2).(*array.Int64).Value(r))
			require.Equal(t, want.ReceivedMs[i], rec.Column(3).(*array.Int64).Value(r))
			for j := range export.StringColumns {
				require.Equal(t, want.Str[j].Value(i), rec.Column(4+j).(*array.String).Value(r), "column %s", export.StringColumns[j])
			}
			require.Equal(t, want.BreakGlass[i], rec.Column(4+len(export.StringColumns)).(*array.Boolean).Value(r))
			require.Equal(t, want.SubjectRef.Value(i), rec.Column(5+len(export.StringColumns)).(*array.String).Value(r))
			if i++; i == want.Len() {
				k, i = k+1, 0
			}
		}
	}
	if err := rr.Err(); !errors.Is(err, io.EOF) { // the reader's end
		require.NoError(t, err)
	}
	require.Equal(t, len(in), k, "every row read back")
	require.Equal(t, 2, pf.NumRowGroups(), "a row group per batch")
}

// fleetBatch is n rows shaped like a fleet's export (the query bench's
// fleet): unique event ids and raw refs, 20,000 pseudonymous subjects and
// devices, 40,000 credentials, 1,000 doors, a few values of the rest, and
// empty ids on the lock's own events.
func fleetBatch(n int) *export.Batch {
	rng := rand.New(rand.NewPCG(5, 6))
	b := &export.Batch{}
	pseudonym := func(kind byte, i uint64) string {
		return fmt.Sprintf("p%c_%024x", kind, i*0x9e3779b97f4a7c15)
	}
	for i := 0; i < n; i++ {
		b.EventID.Append(fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff,
			rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff))
		ts := 1_770_000_000_000 + int64(i)*26_000 + rng.Int64N(1000)
		b.TsMs = append(b.TsMs, ts)
		b.ReceivedMs = append(b.ReceivedMs, ts+800)
		site, door, subj := rng.Uint64N(20), rng.Uint64N(50), rng.Uint64N(20000)
		person := rng.IntN(100) < 85
		vals := []string{[]string{"nuki", "seam", "matter", "salto"}[site%4], fmt.Sprintf("site-%d", site),
			fmt.Sprintf("zone-%d-%d", site, door%8), fmt.Sprintf("door-%d-%d", site, door),
			fmt.Sprintf("lock-%d-%d", site, door), "", "", "", "attested",
			[]string{"unlock", "lock", "door_opened", "door_closed"}[rng.IntN(4)],
			[]string{"granted", "denied", "info"}[rng.IntN(3)], []string{"card", "ble", "nfc", "unknown"}[rng.IntN(4)],
			"", fmt.Sprintf("code-%d", rng.IntN(20)), fmt.Sprintf("lock.events.raw/%d/%d", rng.IntN(12), i)}
		if person {
			vals[5], vals[6], vals[7] = pseudonym('s', subj), pseudonym('c', subj*2+rng.Uint64N(2)), pseudonym('d', subj)
		}
		if rng.IntN(10) == 0 {
			vals[12] = "expired_credential"
		}
		for j, v := range vals {
			b.Str[j].Append(v)
		}
		b.BreakGlass = append(b.BreakGlass, rng.IntN(1000) == 0)
	}
	return b
}

// BenchmarkWriter measures the encoders alone (rows/s), without ClickHouse:
// on 50 values per column (small) and on a fleet's shape (fleet).
func BenchmarkWriter(b *testing.B) {
	const rows = 64 << 10
	for _, data := range []struct {
		name string
		in   *export.Batch
	}{{"small", batch(rows)}, {"fleet", fleetBatch(rows)}} {
		b.Run(data.name, func(b *testing.B) { benchmarkWriter(b, data.in) })
	}
}

func benchmarkWriter(b *testing.B, in *export.Batch) {
	rows := in.Len()
	for _, format := range export.Formats {
		b.Run(format, func(b *testing.B) {
			cw := &countWriter{}
			w, err := export.NewWriter(format, cw, false)
			require.NoError(b, err)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				require.NoError(b, w.Write(in))
			}
			require.NoError(b, w.Close())
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(cw.n)/float64(rows*b.N), "bytes/row")
		})
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

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
