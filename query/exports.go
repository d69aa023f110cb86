package query

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/maphash"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/query/export"
)

const (
	exportBatchRows = 64 << 10
	// exportChunkRows is the target size of one chunk query; the time window
	// of the next chunk grows or shrinks towards it.
	exportChunkRows = 500_000
	// exportFirstChunkRows is the target size of the first chunk: small, so
	// that the first rows come soon (ClickHouse sorts a whole chunk before
	// it sends any of it).
	exportFirstChunkRows = 100_000
	minExportWindow      = int64(time.Minute / time.Millisecond)
	maxExportWindow      = int64(31 * 24 * time.Hour / time.Millisecond)
)

func (s *Service) exportOp(reidentified bool) openapi.Operation {
	desc := "Streams every matching event in time order (each event once), in chunks, in constant memory. " +
		"subject_id, credential_id and device_id are pseudonymized per export key (stable keyed hashes: " +
		"rows of one person link up, but not to keyfleet's ids). Each export is written to the audit log."
	if reidentified {
		desc = "Like /v1/export/events, with keyfleet's own subject_id, credential_id and device_id and " +
			"the subject's organisation reference (subject_ref, from subject_identities). Admin only; audited."
	}
	types := map[string]map[string]any{}
	for _, f := range export.Formats {
		types[export.ContentType(f)] = map[string]any{"type": "string", "format": "binary"}
	}
	return openapi.Operation{
		Description: desc,
		Params: append(append(rangeParams("now-24h"), filterParams()...),
			openapi.Param{Name: "format", Enum: export.Formats, Default: export.CSV,
				Description: "csv (with header), arrow (Arrow IPC stream) or parquet"},
			openapi.Param{Name: "max_rows", Type: openapi.TypeInteger, Min: 1, Max: s.opts.ExportMaxRows,
				Description: "refuse (422 export_too_large) rather than export more rows than this"},
		),
		Responses: map[int]openapi.Response{
			200: {Description: "the export file", Content: types},
			422: {Description: "more rows match than max_rows (or the server's limit)"},
		},
	}
}

func (s *Service) handleExport(c *fiber.Ctx) error { return s.export(c, false) }

func (s *Service) handleExportReidentified(c *fiber.Ctx) error { return s.export(c, true) }

func (s *Service) export(c *fiber.Ctx, reidentified bool) error {
	route := PathExport
	if reidentified {
		route = PathExportReid
	}
	v, err := s.parse(c, s.exportOp(reidentified))
	if err != nil {
		return err
	}
	r, err := s.timeRange(v)
	if err != nil {
		return err
	}
	sel, err := scoped(c, selectionOf(v))
	if err != nil {
		return err
	}
	format := v.String("format")
	maxRows := s.opts.ExportMaxRows
	if v.Has("max_rows") {
		maxRows = v.Int("max_rows")
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	src, err := s.plan(ctx, sel)
	if err != nil {
		return s.queryError(route, err)
	}
	// Count first (an upper bound: duplicates not merged yet are counted) so
	// an export that is too large is refused before anything is streamed.
	var n uint64
	countArgs := r.args(chstorage.Args{"table": src.table, "filters": src.w.fragment()})
	if err := exportCountSQL.QueryRow(ctx, s.opts.Conn, countArgs).Scan(&n); err != nil {
		return s.queryError(route, err)
	}
	if int64(n) > maxRows {
		p := httpapi.NewProblem(fiber.StatusUnprocessableEntity, "export_too_large",
			fmt.Sprintf("%d events match, more than the %d allowed; narrow the time range or filters", n, maxRows))
		p.Field = "max_rows"
		return p
	}
	action := "export.events"
	if reidentified {
		action = "export.events.reidentified"
	}
	if err := s.audit(ctx, c, action, src.table, map[string]string{
		"format": format, "from_ms": itoa(r.from), "to_ms": itoa(r.to), "filters": sel.key(),
		"rows_at_most": strconv.FormatUint(n, 10),
	}); err != nil {
		return err
	}
	name := fmt.Sprintf("keyfleet-events-%s-%s%s", time.UnixMilli(r.from).UTC().Format("20060102T150405Z"),
		time.UnixMilli(r.to).UTC().Format("20060102T150405Z"), export.Extension(format))
	c.Set(fiber.HeaderContentType, export.ContentType(format))
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	conn := c.Context().Conn()
	job := exportJob{s: s, src: src, r: r, format: format, reidentified: reidentified, rows: n}
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		rows, err := job.run(context.Background(), w)
		s.metrics.exportRows.WithLabelValues(format).Add(float64(rows))
		if err != nil {
			s.metrics.exports.WithLabelValues(format, "failed").Inc()
			s.opts.Logger.Error("export failed mid-stream; closing the connection so the client sees a truncated body",
				"format", format, "rows", rows, "err", err)
			closeConn(conn)
			return
		}
		s.metrics.exports.WithLabelValues(format, "complete").Inc()
	})
	return nil
}

func closeConn(c net.Conn) {
	if c != nil {
		_ = c.Close()
	}
}

var (
	exportCountSQL             = chstorage.Query("query/export_count")
	exportChunkSQL             = chstorage.Query("query/export_chunk")
	exportChunkReidentifiedSQL = chstorage.Query("query/export_chunk_reidentified")
)

// exportJob streams one export.
type exportJob struct {
	s            *Service
	src          source
	r            timeRange
	format       string
	reidentified bool
	rows         uint64 // how many rows match at most (the count query's), sizes the first chunk; 0: unknown
	batchRows    int    // rows per batch; 0: exportBatchRows
}

// run writes the export to w and returns the rows written. A reader
// goroutine runs the chunk queries and fills batches while this one encodes
// and writes the previous ones; exportBuffers batches circulate between
// them, so memory stays bounded.
func (j exportJob) run(ctx context.Context, w *bufio.Writer) (int64, error) {
	if j.batchRows <= 0 {
		j.batchRows = exportBatchRows
	}
	ew, err := export.NewWriter(j.format, w, j.reidentified)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *export.Batch, exportBuffers)
	for i := 0; i < exportBuffers; i++ {
		free <- batchPool.Get().(*export.Batch)
	}
	full := make(chan *export.Batch, exportBuffers)
	var readErr error
	go func() {
		defer close(full)
		readErr = j.read(ctx, free, full)
	}()
	var total int64
	var writeErr error
	for b := range full {
		if writeErr == nil {
			if writeErr = ew.Write(b); writeErr == nil {
				total += int64(b.Len())
				writeErr = w.Flush()
			}
			if writeErr != nil {
				cancel()
			}
		}
		b.Reset()
		free <- b
	}
	// The reader is done (it closed full): keep its batches' memory for the
	// next export instead of growing new ones from nothing.
	for len(free) > 0 {
		batchPool.Put(<-free)
	}
	if readErr != nil && writeErr == nil {
		return total, readErr
	}
	if writeErr != nil {
		return total, writeErr
	}
	if err := ew.Close(); err != nil {
		return total, err
	}
	return total, w.Flush()
}

// batchPool holds the batches of finished exports (pointer-free column
// slices, a few MB each; dropped by the GC when idle).
var batchPool = sync.Pool{New: func() any { return new(export.Batch) }}

// exportBuffers is how many batches an export holds at most.
const exportBuffers = 3

// read runs the chunk queries in order: time windows sized towards
// exportChunkRows on the table plan picked, which is ordered so that a
// window reads little more than its rows (the time-ordered copy; the main
// table only with a site, door or lock; the subject-ordered copy with
// subjects).
func (j exportJob) read(ctx context.Context, free <-chan *export.Batch, full chan<- *export.Batch) error {
	var ps *pseudonymizer
	if !j.reidentified {
		ps = newPseudonymizer(j.s.opts.ExportKey)
	}
	take := func() (*export.Batch, error) {
		select {
		case b := <-free:
			return b, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b, err := take()
	if err != nil {
		return err
	}
	flush := func(done *export.Batch) (*export.Batch, error) {
		select {
		case full <- done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return take()
	}
	if cfg := j.s.opts.ClickHouse; cfg != nil && cfg.Protocol != chstorage.ProtocolHTTP {
		b, err = j.readBlocks(ctx, *cfg, b, ps, flush)
	} else {
		b, err = j.readRows(ctx, b, ps, flush)
	}
	if err != nil {
		return err
	}
	if b.Len() > 0 {
		if _, err := flush(b); err != nil {
			return err
		}
	}
	return nil
}

// firstWindow is the first chunk's time window: the range's share of
// exportFirstChunkRows when rows (an upper bound) are spread evenly over it.
func (j exportJob) firstWindow() int64 {
	span := j.r.to - j.r.from
	if j.rows == 0 {
		return min(span, int64(24*time.Hour/time.Millisecond))
	}
	w := int64(float64(span) * exportFirstChunkRows / float64(j.rows))
	return min(max(w, minExportWindow), maxExportWindow)
}

// nextWindow sizes a window from the last chunk's: halved when it held more
// than twice exportChunkRows, doubled when less than half.
func nextWindow(window int64, n int) int64 {
	switch {
	case n > 2*exportChunkRows:
		return max(window/2, minExportWindow)
	case n < exportChunkRows/2:
		return min(window*2, maxExportWindow)
	}
	return window
}

// readRows runs the chunk queries one after the other through Conn.
func (j exportJob) readRows(ctx context.Context, b *export.Batch, ps *pseudonymizer,
	flush func(*export.Batch) (*export.Batch, error)) (*export.Batch, error) {
	window := j.firstWindow()
	for from := j.r.from; from < j.r.to; {
		to := min(from+window, j.r.to)
		var n int
		var err error
		n, b, err = j.chunk(ctx, timeRange{from, to}, b, ps, flush)
		if err != nil {
			return b, err
		}
		window = nextWindow(window, n)
		from = to
	}
	return b, nil
}

// chunk reads one time window through Conn, row by row, in (ts_ms,
// event_id) order, skipping duplicates (adjacent in that order), and calls
// flush for each full batch.
func (j exportJob) chunk(ctx context.Context, r timeRange, b *export.Batch, ps *pseudonymizer,
	flush func(*export.Batch) (*export.Batch, error)) (int, *export.Batch, error) {
	timeout := j.chunkTimeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q, args := j.chunkSQL(r)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": int(timeout.Seconds())}))
	rows, err := q.Query(ctx, j.s.opts.Conn, args)
	if err != nil {
		return 0, b, fmt.Errorf("export chunk: %w", err)
	}
	defer rows.Close()
	var (
		id, prevID uuid.UUID
		tsMs       int64
		prevTs     int64 = -1
		recvMs     int64
		str        [15]string
		bg         uint8
		ref        string
		n          int
		idBuf      [36]byte
	)
	// Scan targets in eventColumns order: ..., vendor_code, break_glass, raw_ref.
	dst := []any{&id, &tsMs, &recvMs}
	for i := 0; i < 14; i++ {
		dst = append(dst, &str[i])
	}
	dst = append(dst, &bg, &str[14])
	if j.reidentified {
		dst = append(dst, &ref)
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return n, b, fmt.Errorf("export chunk: %w", err)
		}
		n++
		if tsMs == prevTs && id == prevID {
			continue // a duplicate not merged yet
		}
		prevTs, prevID = tsMs, id
		b.EventID.AppendBytes(appendUUID(idBuf[:0], id))
		b.TsMs = append(b.TsMs, tsMs)
		b.ReceivedMs = append(b.ReceivedMs, recvMs)
		for i := range str {
			if kind := pseudonymKind(ps, i); kind != 0 {
				dst := &b.Str[i]
				dst.Data = ps.appendID(dst.Data, kind, unsafe.Slice(unsafe.StringData(str[i]), len(str[i])))
				dst.Ends = append(dst.Ends, int32(len(dst.Data)))
				continue
			}
			b.Str[i].Append(str[i])
		}
		b.BreakGlass = append(b.BreakGlass, bg != 0)
		if j.reidentified {
			b.SubjectRef.Append(ref)
		}
		if b.Len() >= j.batchRows {
			if b, err = flush(b); err != nil {
				return n, b, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, b, fmt.Errorf("export chunk: %w", err)
	}
	return n, b, nil
}

// chunkTimeout bounds one chunk query.
func (j exportJob) chunkTimeout() time.Duration { return 10 * j.s.opts.Timeout }

// chunkSQL returns the chunk query of window r and its arguments.
func (j exportJob) chunkSQL(r timeRange) (*chstorage.Statement, chstorage.Args) {
	q := exportChunkSQL
	if j.reidentified {
		q = exportChunkReidentifiedSQL
	}
	return q, r.args(chstorage.Args{"table": j.src.table, "filters": j.src.w.fragment()})
}

// appendUUID appends id in uuid.UUID.String's form without allocating.
func appendUUID(dst []byte, id uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], id[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], id[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], id[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], id[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], id[10:])
	return append(dst, buf[:]...)
}

// pseudonymizer maps ids to keyed, export-stable pseudonyms. Each kind
// has a cache of its own (pseudonymCache), so a repeated id costs one
// look-up and no allocation; the HMAC runs once per distinct id.
type pseudonymizer struct {
	mac   hash.Hash
	cache [3]pseudonymCache // subject, credential, device
	sum   []byte
	buf   []byte
}

func newPseudonymizer(key []byte) *pseudonymizer {
	p := &pseudonymizer{mac: hmac.New(sha256.New, append([]byte("keyfleet-export\x00"), key...))}
	seed := maphash.MakeSeed()
	for i := range p.cache {
		p.cache[i].seed = seed
	}
	return p
}

// pseudonymLen is the length of a pseudonym: "p<kind>_" and 24 hex digits.
const pseudonymLen = 3 + pseudonymHex

const pseudonymHex = 24

// id returns "p<kind>_" + 24 hex digits of HMAC-SHA256(kind, v); "" stays "".
func (p *pseudonymizer) id(kind byte, v string) string {
	return string(p.appendID(nil, kind, unsafe.Slice(unsafe.StringData(v), len(v))))
}

// appendID appends v's pseudonym to dst (nothing for an empty v).
func (p *pseudonymizer) appendID(dst []byte, kind byte, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	c := &p.cache[kindIndex(kind)]
	h := maphash.Bytes(c.seed, v)
	if hexID, ok := c.get(h, v); ok {
		return append(append(dst, 'p', kind, '_'), hexID...)
	}
	p.mac.Reset()
	p.buf = append(append(p.buf[:0], kind), v...)
	p.mac.Write(p.buf)
	p.sum = p.mac.Sum(p.sum[:0])
	var hexID [pseudonymHex]byte
	hex.Encode(hexID[:], p.sum[:pseudonymHex/2])
	c.put(h, v, hexID)
	return append(append(dst, 'p', kind, '_'), hexID[:]...)
}

// pseudonymKind is the pseudonym kind of string column col ('s', 'c' or
// 'd'), 0 for a column kept as stored or without ps.
func pseudonymKind(ps *pseudonymizer, col int) byte {
	if ps == nil {
		return 0
	}
	switch col {
	case export.ColSubject:
		return 's'
	case export.ColCredential:
		return 'c'
	case export.ColDevice:
		return 'd'
	}
	return 0
}

func kindIndex(kind byte) int {
	switch kind {
	case 's':
		return 0
	case 'c':
		return 1
	}
	return 2
}

// pseudonymCache maps ids to their pseudonyms' hex digits: an open-addressing
// table (linear probing, at most half full) whose keys and values sit in one
// byte arena, so it holds no pointers for the GC to scan and an insert
// allocates nothing but the occasional growth. It holds at most
// maxPseudonyms ids and starts afresh when full.
type pseudonymCache struct {
	seed  maphash.Seed
	slots []pseudonymSlot
	n     int
	arena []byte // per id: its pseudonym's hex digits, then the id
}

type pseudonymSlot struct {
	hash uint64
	off  uint32 // into arena; the hex digits, then the id
	len  uint32 // the id's length; 0: empty slot
}

// maxPseudonyms bounds a pseudonymCache (about 64 bytes an id).
const maxPseudonyms = 1 << 18

func (c *pseudonymCache) get(h uint64, v []byte) ([]byte, bool) {
	if len(c.slots) == 0 {
		return nil, false
	}
	mask := uint64(len(c.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &c.slots[i]
		if s.len == 0 {
			return nil, false
		}
		if s.hash == h && int(s.len) == len(v) {
			key := c.arena[s.off+pseudonymHex : s.off+pseudonymHex+s.len]
			if string(key) == string(v) {
				return c.arena[s.off : s.off+pseudonymHex], true
			}
		}
	}
}

func (c *pseudonymCache) put(h uint64, v []byte, hexID [pseudonymHex]byte) {
	if len(v) > math.MaxUint32-pseudonymHex {
		return // not cached; no id is this long
	}
	if c.n >= maxPseudonyms {
		c.slots, c.n, c.arena = nil, 0, c.arena[:0]
	}
	if 2*(c.n+1) > len(c.slots) {
		c.grow()
	}
	if len(c.arena)+pseudonymHex+len(v) > math.MaxUint32 {
		clear(c.slots)
		c.n, c.arena = 0, c.arena[:0]
	}
	off := uint32(len(c.arena))
	c.arena = append(append(c.arena, hexID[:]...), v...)
	c.insert(pseudonymSlot{hash: h, off: off, len: uint32(len(v))})
	c.n++
}

func (c *pseudonymCache) grow() {
	old := c.slots
	c.slots = make([]pseudonymSlot, max(1024, 2*len(old)))
	for _, s := range old {
		if s.len != 0 {
			c.insert(s)
		}
	}
}

func (c *pseudonymCache) insert(s pseudonymSlot) {
	mask := uint64(len(c.slots) - 1)
	i := s.hash & mask
	for c.slots[i].len != 0 {
		i = (i + 1) & mask
	}
	c.slots[i] = s
}
