package query

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/query/export"
	"github.com/keyfleet/keyfleet/query/querytest"
)

func TestAppendUUIDMatchesString(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []uuid.UUID{uuid.Nil, uuid.Max}
	for i := 0; i < 100; i++ {
		var id uuid.UUID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		require.Equal(t, id.String(), string(appendUUID([]byte("x"), id)[1:]))
	}
}

// TestPseudonymizerMatchesHMAC: every pseudonym is "p<kind>_" and the first
// 12 bytes of HMAC-SHA256 in hex, from the cache or not, across the cache's
// growth and its reset when full; "" stays "".
func TestPseudonymizerMatchesHMAC(t *testing.T) {
	key := []byte("test-export-key-0123456789")
	want := func(kind byte, v string) string {
		mac := hmac.New(sha256.New, append([]byte("keyfleet-export\x00"), key...))
		mac.Write(append([]byte{kind}, v...))
		return "p" + string(kind) + "_" + hex.EncodeToString(mac.Sum(nil)[:12])
	}
	p := newPseudonymizer(key)
	require.Empty(t, p.id('s', ""))
	rng := rand.New(rand.NewPCG(3, 4))
	ids := maxPseudonyms + 1000 // past the cache's bound: it starts afresh
	for i := 0; i < ids; i++ {
		v := fmt.Sprintf("cred-%d", i)
		kind := "scd"[i%3]
		got := string(p.appendID([]byte("x"), kind, []byte(v)))
		if i%997 == 0 || i < 3000 {
			require.Equal(t, "x"+want(kind, v), got, "id %q", v)
		}
		// A repeat, from the cache.
		j := rng.IntN(i + 1)
		v = fmt.Sprintf("cred-%d", j)
		if j%997 == 0 || j < 3000 {
			require.Equal(t, want("scd"[j%3], v), p.id("scd"[j%3], v), "repeat of %q", v)
		}
	}
	require.LessOrEqual(t, p.cache[0].n+p.cache[1].n+p.cache[2].n, 3*maxPseudonyms)
	// Different kinds, different pseudonyms of one id.
	require.NotEqual(t, p.id('s', "x1")[3:], p.id('c', "x1")[3:])
}

func TestPseudonymCacheHitAllocatesNothing(t *testing.T) {
	p := newPseudonymizer([]byte("test-export-key-0123456789"))
	v := []byte("subj-12345")
	dst := p.appendID(nil, 's', v)
	allocs := testing.AllocsPerRun(100, func() { dst = p.appendID(dst[:0], 's', v) })
	require.Zero(t, allocs)
}

// testBlock is one block of the block reader's columns.
type testBlock struct {
	ids  []uuid.UUID
	ts   []int64
	strs func(col, row int) string
}

// TestBlockReaderSkipsDuplicatesAcrossBlocksAndBatches: duplicates (adjacent
// in (ts_ms, event_id) order) inside a block and across a block boundary
// are skipped, batches end at batchRows, and LowCardinality and Nullable
// string columns read like String ones.
func TestBlockReaderSkipsDuplicatesAcrossBlocksAndBatches(t *testing.T) {
	id := func(i int) uuid.UUID { return uuid.UUID{15: byte(i)} }
	value := func(col, row int) string {
		if row%4 == 0 {
			return "" // empty values sit between others
		}
		return fmt.Sprintf("%s-%d", export.StringColumns[col], row)
	}
	// Rows 0..9 (ts = row/2), each unique row given once, with duplicates of
	// rows 2 and 5 (the latter across the block boundary) and of row 9 twice.
	blocks := [][]int{{0, 1, 2, 2, 3, 4, 5}, {5, 6, 7, 8, 9, 9, 9}}
	ps := newPseudonymizer([]byte("test-export-key-0123456789"))
	for _, kind := range []string{"String", "LowCardinality(String)", "Nullable(String)"} {
		t.Run(kind, func(t *testing.T) {
			r := newBlockReader(true, 3)
			var out []*export.Batch
			r.b = new(export.Batch)
			r.ps = ps
			r.prevTs = -1
			r.flush = func(b *export.Batch) (*export.Batch, error) {
				out = append(out, b)
				return new(export.Batch), nil
			}
			for _, rows := range blocks {
				setTestBlock(t, r, kind, rows, id, value)
				require.NoError(t, r.block())
			}
			out = append(out, r.b)
			require.Equal(t, 14, r.n, "rows read, duplicates included")
			var got []string
			for k, b := range out {
				if k < len(out)-1 {
					require.Equal(t, 3, b.Len(), "batch %d", k)
				}
				for i := 0; i < b.Len(); i++ {
					got = append(got, b.EventID.Value(i))
					require.Equal(t, int64(len(got)-1)/2, b.TsMs[i])
					require.Equal(t, b.TsMs[i]+7, b.ReceivedMs[i])
					row := len(got) - 1
					for c := range export.StringColumns {
						v := value(c, row)
						switch c {
						case export.ColSubject:
							v = ps.id('s', v)
						case export.ColCredential:
							v = ps.id('c', v)
						case export.ColDevice:
							v = ps.id('d', v)
						}
						require.Equal(t, v, b.Str[c].Value(i), "row %d column %s", row, export.StringColumns[c])
					}
					require.Equal(t, row%3 == 0, b.BreakGlass[i])
					require.Equal(t, value(0, row), b.SubjectRef.Value(i))
				}
			}
			var want []string
			for i := 0; i < 10; i++ {
				want = append(want, id(i).String())
			}
			require.Equal(t, want, got)
		})
	}
}

// setTestBlock fills the reader's columns with rows as ClickHouse would
// decode them, string columns of the given type.
func setTestBlock(t *testing.T, r *blockReader, kind string, rows []int, id func(int) uuid.UUID,
	value func(col, row int) string) {
	t.Helper()
	set := func(i int, col proto.Column) {
		r.cols[i].Data = &proto.ColAuto{Data: col, DataType: col.Type()}
	}
	strs := func(col int) proto.Column {
		var s proto.ColStr
		for _, row := range rows {
			s.Append(value(col, row))
		}
		switch kind {
		case "LowCardinality(String)":
			lc := s.LowCardinality()
			for _, row := range rows {
				lc.Append(value(col, row))
			}
			return lc
		case "Nullable(String)":
			var n proto.ColNullable[string]
			n.Values = new(proto.ColStr)
			for _, row := range rows {
				if v := value(col, row); v == "" {
					n.Append(proto.Null[string]())
				} else {
					n.Append(proto.NewNullable(v))
				}
			}
			return &n
		}
		return &s
	}
	var ids proto.ColUUID
	var ts, recv proto.ColInt64
	var bg proto.ColUInt8
	for _, row := range rows {
		ids = append(ids, id(row))
		ts = append(ts, int64(row/2))
		recv = append(recv, int64(row/2)+7)
		if row%3 == 0 {
			bg = append(bg, 1)
		} else {
			bg = append(bg, 0)
		}
	}
	set(0, &ids)
	set(1, &ts)
	set(2, &recv)
	for k := 0; k < 14; k++ {
		set(3+k, strs(k))
	}
	set(17, &bg)
	set(18, strs(14))
	set(19, strs(0)) // subject_ref
	require.Equal(t, len(rows), r.cols.Rows())
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, audit.Entry) error { return nil }

// exportFixture is a ClickHouse database with events (duplicates not merged
// yet among them), some subjects' identities, and a query service on it.
type exportFixture struct {
	cfg      chstorage.Config
	rows     *Service // exports scan rows through Conn
	blocks   *Service // exports read native blocks
	from, to int64
	distinct uint64
}

func newExportFixture(t *testing.T) *exportFixture {
	conn, cfg := testenv.ClickHouse(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	require.NoError(t, querytest.Load(ctx, conn, querytest.Fleet{Events: 30000, Start: start, Span: 5 * 24 * time.Hour,
		Subjects: 500}))
	require.NoError(t, querytest.Redeliver(ctx, conn, 7))
	var idents [][]any
	for i := uint64(0); i < 500; i += 3 {
		idents = append(idents, []any{querytest.Subject(i), fmt.Sprintf(`hr:%d 'q' \ ?`, i), "Name", int64(1)})
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "subject_identities",
		[]string{"subject_id", "subject_ref", "display_name", "updated_ms"}, idents...))
	f := &exportFixture{cfg: cfg, from: start.Add(-time.Hour).UnixMilli(), to: start.Add(6 * 24 * time.Hour).UnixMilli()}
	require.NoError(t, conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM access_events").Scan(&f.distinct))
	var all uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&all))
	require.Greater(t, all, f.distinct, "duplicates not merged yet")
	opts := Options{Conn: conn, Audit: nopAudit{}, ExportKey: []byte("test-export-key-0123456789"),
		Logger: testenv.Logger(t)}
	var err error
	f.rows, err = New(opts)
	require.NoError(t, err)
	opts.ClickHouse = &f.cfg
	f.blocks, err = New(opts)
	require.NoError(t, err)
	return f
}

func (f *exportFixture) export(t *testing.T, s *Service, format string, reidentified bool, sel selection,
	batchRows int) ([]byte, int64, error) {
	t.Helper()
	ctx := context.Background()
	src, err := s.plan(ctx, sel)
	require.NoError(t, err)
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	job := exportJob{s: s, src: src, r: timeRange{f.from, f.to}, format: format, reidentified: reidentified,
		batchRows: batchRows}
	n, err := job.run(ctx, w)
	return buf.Bytes(), n, err
}

// TestExportReadersWriteTheSameFiles: the block reader's files are the row
// reader's, byte for byte, in every format, pseudonymized and
// re-identified (subject_ref, empty values, duplicates skipped), with
// batches ending inside blocks and with filters rendered into the SQL.
func TestExportReadersWriteTheSameFiles(t *testing.T) {
	f := newExportFixture(t)
	for _, format := range export.Formats {
		for _, reid := range []bool{false, true} {
			for _, sel := range []selection{{}, {"outcome": {"granted", "denied"}, "site": {"site-1", "site-3"}}} {
				name := fmt.Sprintf("%s/reidentified=%v/%s", format, reid, sel.key())
				t.Run(name, func(t *testing.T) {
					want, wantN, err := f.export(t, f.rows, format, reid, sel, 997)
					require.NoError(t, err)
					got, gotN, err := f.export(t, f.blocks, format, reid, sel, 997)
					require.NoError(t, err)
					require.Equal(t, wantN, gotN, "rows")
					require.True(t, bytes.Equal(want, got), "the files differ (%d and %d bytes)", len(got), len(want))
					if len(sel) == 0 {
						require.Equal(t, int64(f.distinct), gotN, "every event once")
					} else {
						require.Positive(t, gotN)
					}
				})
			}
		}
	}
	// The batch size changes record batches and row groups, never a CSV.
	want, _, err := f.export(t, f.rows, export.CSV, true, selection{}, 0)
	require.NoError(t, err)
	got, _, err := f.export(t, f.blocks, export.CSV, true, selection{}, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got))
	require.Contains(t, string(got), `hr:3 'q' \ ?`)
}

// cutWriter cuts the proxy ClickHouse is reached through when the export's
// first bytes arrive.
type cutWriter struct {
	proxy *testenv.Proxy
	cut   bool
	n     int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if !w.cut {
		w.proxy.Cut()
		w.cut = true
	}
	w.n += len(p)
	return len(p), nil
}

// TestExportFailsWhenClickHouseGoesAway: ClickHouse unreachable after the
// first batch: the export ends with an error (the handler then closes the
// connection, so the client sees a truncated body), never as a complete
// file.
func TestExportFailsWhenClickHouseGoesAway(t *testing.T) {
	f := newExportFixture(t)
	proxy := testenv.NewProxy(t, f.cfg.Addr)
	cfg := f.cfg
	cfg.Addr = proxy.Addr()
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			proxy.Restore()
			conn, err := chstorage.Open(context.Background(), cfg)
			require.NoError(t, err)
			defer conn.Close()
			opts := Options{Conn: conn, Audit: nopAudit{}, ExportKey: []byte("test-export-key-0123456789"),
				Logger: testenv.Logger(t), Timeout: 5 * time.Second}
			if native {
				opts.ClickHouse = &cfg
			}
			s, err := New(opts)
			require.NoError(t, err)
			w := &cutWriter{proxy: proxy}
			job := exportJob{s: s, src: source{table: tableEvents}, r: timeRange{f.from, f.to}, format: export.CSV,
				batchRows: 500}
			n, err := job.run(context.Background(), bufio.NewWriterSize(w, 4096))
			require.Error(t, err)
			require.True(t, w.cut)
			require.Less(t, n, int64(f.distinct))
		})
	}
}
