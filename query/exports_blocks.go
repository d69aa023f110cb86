package query

import (
	"context"
	"fmt"
	"sync"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/ch-go/proto"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/query/export"
)

// The block reader: an export's chunk query read with ch-go, a native block
// at a time, each column copied into the batch's columns in one pass (a
// String column's bytes in one piece) instead of scanning row by row.

// exportColumns are the columns of export_chunk.sql, in order (export_chunk_reidentified.sql adds subject_ref).
var exportColumns = append(append([]string{"event_id", "ts_ms", "received_ms"}, export.StringColumns[:14]...),
	"break_glass", "raw_ref")

// blockReader turns the blocks of one chunk query into batches.
type blockReader struct {
	cols      proto.Results
	batchRows int
	ps        *pseudonymizer // nil: ids as stored
	b         *export.Batch
	flush     func(*export.Batch) (*export.Batch, error)
	n         int // rows read, duplicates included
	prevTs    int64
	prevID    uuid.UUID
	idBuf     [36]byte
}

func newBlockReader(withRef bool, batchRows int) *blockReader {
	names := exportColumns
	if withRef {
		names = append(names[:len(names):len(names)], "subject_ref")
	}
	r := &blockReader{batchRows: batchRows}
	for _, name := range names {
		r.cols = append(r.cols, proto.ResultColumn{Name: name, Data: &proto.ColAuto{}})
	}
	return r
}

// query runs sql and appends its rows to the batch it receives on turn
// (once the chunk before is done), calling flush with every full batch; it
// returns the rows read and the batch being filled.
func (r *blockReader) query(ctx context.Context, client *chstorage.NativeClient, sql string,
	turn <-chan *export.Batch, ps *pseudonymizer, flush func(*export.Batch) (*export.Batch, error),
	settings []ch.Setting) (int, *export.Batch, error) {
	r.b, r.ps, r.flush, r.n, r.prevTs, r.prevID = nil, ps, flush, 0, -1, uuid.UUID{}
	wait := func() error {
		if r.b != nil {
			return nil
		}
		select {
		case r.b = <-turn:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := client.Do(ctx, ch.Query{Body: sql, Result: r.cols, Settings: settings,
		OnResult: func(context.Context, proto.Block) error {
			if err := wait(); err != nil {
				return err
			}
			return r.block()
		}})
	if err == nil {
		err = wait() // no rows: no block came
	}
	b := r.b
	r.b, r.flush, r.ps = nil, nil, nil
	if err != nil {
		return r.n, b, fmt.Errorf("export chunk: %w", err)
	}
	return r.n, b, nil
}

// blockColumns are one block's columns, checked.
type blockColumns struct {
	id       []uuid.UUID
	ts, recv []int64
	str      [15]strColumn
	bg       func(i int) bool
	ref      *strColumn
}

func (r *blockReader) columns() (blockColumns, error) {
	var c blockColumns
	data := func(i int) proto.Column { return r.cols[i].Data.(*proto.ColAuto).Data }
	bad := func(i int) error {
		return fmt.Errorf("column %s: unexpected type %s", r.cols[i].Name, r.cols[i].Data.Type())
	}
	id, ok := data(0).(*proto.ColUUID)
	if !ok {
		return c, bad(0)
	}
	c.id = *id
	for i, dst := range []*[]int64{&c.ts, &c.recv} {
		col, ok := data(1 + i).(*proto.ColInt64)
		if !ok {
			return c, bad(1 + i)
		}
		*dst = *col
	}
	for k := range c.str {
		i := 3 + k
		if k == 14 { // raw_ref follows break_glass
			i++
		}
		var err error
		if c.str[k], err = newStrColumn(data(i)); err != nil {
			return c, bad(i)
		}
	}
	switch bg := data(17).(type) {
	case *proto.ColUInt8:
		c.bg = func(i int) bool { return (*bg)[i] != 0 }
	case *proto.ColBool:
		c.bg = func(i int) bool { return (*bg)[i] }
	default:
		return c, bad(17)
	}
	if len(r.cols) > len(exportColumns) {
		ref, err := newStrColumn(data(len(exportColumns)))
		if err != nil {
			return c, bad(len(exportColumns))
		}
		c.ref = &ref
	}
	return c, nil
}

// block appends the rows of the block just decoded, skipping duplicates
// (adjacent in (ts_ms, event_id) order, also across blocks).
func (r *blockReader) block() error {
	rows := r.cols.Rows()
	if rows == 0 {
		return nil
	}
	c, err := r.columns()
	if err != nil {
		return err
	}
	r.n += rows
	for lo := 0; lo < rows; {
		// The run [lo, hi): rows without a duplicate, as many as fit the batch.
		room := r.batchRows - r.b.Len()
		hi := lo
		for hi < rows && hi-lo < room {
			if c.ts[hi] == r.prevTs && c.id[hi] == r.prevID {
				break
			}
			r.prevTs, r.prevID = c.ts[hi], c.id[hi]
			hi++
		}
		r.appendRows(&c, lo, hi)
		if r.b.Len() >= r.batchRows {
			if r.b, err = r.flush(r.b); err != nil {
				return err
			}
		}
		if hi < rows && hi-lo < room { // a duplicate not merged yet
			hi++
		}
		lo = hi
	}
	return nil
}

// appendRows appends rows [lo, hi) of c to the batch.
func (r *blockReader) appendRows(c *blockColumns, lo, hi int) {
	if lo == hi {
		return
	}
	b := r.b
	for _, id := range c.id[lo:hi] {
		b.EventID.AppendBytes(appendUUID(r.idBuf[:0], id))
	}
	b.TsMs = append(b.TsMs, c.ts[lo:hi]...)
	b.ReceivedMs = append(b.ReceivedMs, c.recv[lo:hi]...)
	for k := range c.str {
		kind := pseudonymKind(r.ps, k)
		if kind == 0 {
			c.str[k].appendTo(&b.Str[k], lo, hi)
			continue
		}
		dst := &b.Str[k]
		for i := lo; i < hi; i++ {
			dst.Data = r.ps.appendID(dst.Data, kind, c.str[k].bytes(i))
			dst.Ends = append(dst.Ends, int32(len(dst.Data)))
		}
	}
	for i := lo; i < hi; i++ {
		b.BreakGlass = append(b.BreakGlass, c.bg(i))
	}
	if c.ref != nil {
		c.ref.appendTo(&b.SubjectRef, lo, hi)
	}
}

// strColumn reads a String column, or one of LowCardinality(String) or
// Nullable(String) (NULL is "", as the row reader scans it).
type strColumn struct {
	str  *proto.ColStr
	rows interface{ Row(i int) string }
}

type nullableStrings struct{ c *proto.ColNullable[string] }

func (n nullableStrings) Row(i int) string { return n.c.Row(i).Value }

func newStrColumn(col proto.Column) (strColumn, error) {
	switch c := col.(type) {
	case *proto.ColStr:
		return strColumn{str: c}, nil
	case *proto.ColLowCardinality[string]:
		return strColumn{rows: c}, nil
	case *proto.ColNullable[string]:
		return strColumn{rows: nullableStrings{c}}, nil
	}
	return strColumn{}, fmt.Errorf("not a string column: %s", col.Type())
}

// bytes returns value i; it aliases the column (ColStr) or a string.
func (s *strColumn) bytes(i int) []byte {
	if s.str != nil {
		return s.str.RowBytes(i)
	}
	v := s.rows.Row(i)
	return []byte(v)
}

// appendTo appends values [lo, hi) to dst: a ColStr's bytes in one copy.
func (s *strColumn) appendTo(dst *export.Strings, lo, hi int) {
	if s.str == nil {
		for i := lo; i < hi; i++ {
			dst.Append(s.rows.Row(i))
		}
		return
	}
	pos := s.str.Pos[lo:hi]
	start := pos[0].Start
	shift := int32(len(dst.Data) - start)
	dst.Data = append(dst.Data, s.str.Buf[start:pos[len(pos)-1].End]...)
	for _, p := range pos {
		dst.Ends = append(dst.Ends, int32(p.End)+shift)
	}
}

// readBlocks runs the chunk queries over two connections of their own
// (ch-go), one chunk ahead: while one chunk streams into batches,
// ClickHouse already reads and sorts the next, whose first block it sends
// only once the whole window is sorted. The chunk ahead waits for its turn
// (the batch being filled) before it appends anything, so the batches get
// the rows in order. Its window is sized from the last chunk that finished.
func (j exportJob) readBlocks(ctx context.Context, cfg chstorage.Config, b *export.Batch, ps *pseudonymizer,
	flush func(*export.Batch) (*export.Batch, error)) (*export.Batch, error) {
	ctx, cancel := context.WithCancel(ctx)
	var clients [2]*chstorage.NativeClient
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // the chunk ahead has ended before its connection closes
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var readers [2]*blockReader
	for i := range clients {
		c, err := chstorage.DialNative(ctx, cfg)
		if err != nil {
			return b, fmt.Errorf("export: %w", err)
		}
		clients[i], readers[i] = c, newBlockReader(j.reidentified, j.batchRows)
	}
	timeout := j.chunkTimeout()
	settings := []ch.Setting{ch.SettingInt("max_execution_time", int(timeout.Seconds()))}
	window, from, next := j.firstWindow(), j.r.from, 0
	start := func() (*chunkRun, error) {
		if from >= j.r.to {
			return nil, nil
		}
		r := timeRange{from, min(from+window, j.r.to)}
		from = r.to
		q, args := j.chunkSQL(r)
		sql, err := q.Render(args)
		if err != nil {
			return nil, fmt.Errorf("export chunk: %w", err)
		}
		run := &chunkRun{window: window, turn: make(chan *export.Batch, 1), done: make(chan chunkResult, 1)}
		i := next
		next = 1 - next
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var res chunkResult
			res.n, res.b, res.err = readers[i].query(ctx, clients[i], sql, run.turn, ps, flush, settings)
			run.done <- res
		}()
		return run, nil
	}
	cur, err := start()
	if err != nil || cur == nil {
		return b, err
	}
	cur.turn <- b
	ahead, err := start()
	if err != nil {
		return b, err
	}
	for cur != nil {
		res := <-cur.done
		if res.err != nil {
			return res.b, res.err
		}
		b = res.b
		window = nextWindow(cur.window, res.n)
		cur = ahead
		if cur == nil {
			break
		}
		cur.turn <- b
		if ahead, err = start(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// chunkRun is a chunk query running on its own connection.
type chunkRun struct {
	window int64              // its window's length
	turn   chan *export.Batch // the batch to append to, once the chunk before is done
	done   chan chunkResult
}

type chunkResult struct {
	n   int
	b   *export.Batch // the batch being filled (nil when the turn never came)
	err error
}
