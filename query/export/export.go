// Package export writes access events as CSV, Arrow IPC streams or Parquet
// files, one columnar Batch at a time, so an export of millions of rows uses
// the memory of one batch.
package export

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// Formats.
const (
	CSV     = "csv"
	Arrow   = "arrow"
	Parquet = "parquet"
)

// Formats lists the export formats.
var Formats = []string{CSV, Arrow, Parquet}

// ContentType returns a format's media type.
func ContentType(format string) string {
	switch format {
	case Arrow:
		return "application/vnd.apache.arrow.stream"
	case Parquet:
		return "application/vnd.apache.parquet"
	default:
		return "text/csv; charset=utf-8"
	}
}

// Extension returns a format's file name extension.
func Extension(format string) string {
	switch format {
	case Arrow:
		return ".arrows"
	case Parquet:
		return ".parquet"
	default:
		return ".csv"
	}
}

// StringColumns are the string columns of an export, in order (after
// event_id, ts, ts_ms and received_ms; before break_glass).
var StringColumns = []string{"vendor", "site_id", "zone_id", "door_id", "lock_id", "subject_id",
	"credential_id", "device_id", "attested", "action", "outcome", "method", "reason", "vendor_code", "raw_ref"}

// Column indexes into Batch.Str.
const (
	ColSubject    = 5
	ColCredential = 6
	ColDevice     = 7
)

// Strings is a column of strings stored back to back (Arrow's layout):
// value i is Data[Ends[i-1]:Ends[i]]. Appending copies the value, so a
// batch's strings sit in two slices instead of one heap object each, and
// building a record reads them sequentially.
type Strings struct {
	Data []byte
	Ends []int32
}

// Append adds v.
func (s *Strings) Append(v string) {
	s.Data = append(s.Data, v...)
	s.Ends = append(s.Ends, int32(len(s.Data)))
}

// AppendBytes adds v.
func (s *Strings) AppendBytes(v []byte) {
	s.Data = append(s.Data, v...)
	s.Ends = append(s.Ends, int32(len(s.Data)))
}

// Len is the number of values.
func (s *Strings) Len() int { return len(s.Ends) }

// Value returns value i (a copy).
func (s *Strings) Value(i int) string { return string(s.bytes(i)) }

func (s *Strings) bytes(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = s.Ends[i-1]
	}
	return s.Data[start:s.Ends[i]]
}

// Reset empties the column, keeping its memory.
func (s *Strings) Reset() {
	s.Data = s.Data[:0]
	s.Ends = s.Ends[:0]
}

// Batch is a block of rows, column by column.
type Batch struct {
	EventID    Strings
	TsMs       []int64
	ReceivedMs []int64
	Str        [15]Strings // StringColumns
	BreakGlass []bool
	SubjectRef Strings // only in re-identified exports
}

// Len is the number of rows.
func (b *Batch) Len() int { return b.EventID.Len() }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.EventID.Reset()
	b.TsMs = b.TsMs[:0]
	b.ReceivedMs = b.ReceivedMs[:0]
	for i := range b.Str {
		b.Str[i].Reset()
	}
	b.BreakGlass = b.BreakGlass[:0]
	b.SubjectRef.Reset()
}

// Schema returns the Arrow schema of an export (withRef adds subject_ref).
// ts is the event time as a UTC millisecond timestamp; ts_ms is the same
// instant as epoch milliseconds (the common schema's field).
func Schema(withRef bool) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "ts_ms", Type: arrow.PrimitiveTypes.Int64},
		{Name: "received_ms", Type: arrow.PrimitiveTypes.Int64},
	}
	for _, name := range StringColumns {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields, arrow.Field{Name: "break_glass", Type: arrow.FixedWidthTypes.Boolean})
	if withRef {
		fields = append(fields, arrow.Field{Name: "subject_ref", Type: arrow.BinaryTypes.String})
	}
	return arrow.NewSchema(fields, nil)
}

// Writer writes batches in one format.
type Writer interface {
	Write(b *Batch) error
	// Close finishes the file (Parquet's footer, Arrow's end-of-stream).
	Close() error
}

// NewWriter returns a writer of format to w.
func NewWriter(format string, w io.Writer, withRef bool) (Writer, error) {
	switch format {
	case CSV:
		return newCSV(w, withRef)
	case Arrow:
		return newArrow(w, withRef)
	case Parquet:
		return newParquet(w, withRef)
	}
	return nil, fmt.Errorf("unknown export format %q", format)
}

// csvWriter writes what encoding/csv's Writer (comma, LF line ends) writes,
// byte for byte, column values appended straight from the batch into one
// buffer: encoding/csv takes a []string per row and checks and copies each
// field through a bufio.Writer, which made it the slowest part of a CSV
// export (TestCSVMatchesEncodingCSV holds the two to the same bytes).
type csvWriter struct {
	w       io.Writer
	buf     []byte
	withRef bool
}

// csvFlushBytes is how much the writer buffers before writing.
const csvFlushBytes = 256 << 10

func newCSV(w io.Writer, withRef bool) (*csvWriter, error) {
	cw := &csvWriter{w: w, withRef: withRef, buf: make([]byte, 0, csvFlushBytes+4096)}
	for i, f := range Schema(withRef).Fields() {
		if i > 0 {
			cw.buf = append(cw.buf, ',')
		}
		cw.buf = appendCSVField(cw.buf, []byte(f.Name))
	}
	cw.buf = append(cw.buf, '\n')
	return cw, nil
}

func (c *csvWriter) Write(b *Batch) error {
	for i := 0; i < b.Len(); i++ {
		buf := appendCSVField(c.buf, b.EventID.bytes(i))
		buf = append(buf, ',')
		buf = time.UnixMilli(b.TsMs[i]).UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z")
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, b.TsMs[i], 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, b.ReceivedMs[i], 10)
		for j := range StringColumns {
			buf = append(buf, ',')
			buf = appendCSVField(buf, b.Str[j].bytes(i))
		}
		buf = append(buf, ',')
		buf = strconv.AppendBool(buf, b.BreakGlass[i])
		if c.withRef {
			buf = append(buf, ',')
			buf = appendCSVField(buf, b.SubjectRef.bytes(i))
		}
		c.buf = append(buf, '\n')
		if len(c.buf) >= csvFlushBytes {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return c.flush()
}

func (c *csvWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func (c *csvWriter) Close() error { return c.flush() }

// appendCSVField appends v as encoding/csv writes a field: quoted when it
// holds a comma, a quote, CR or LF, starts with a space, or is \. (a
// quote inside doubled; CR and LF kept as they are).
func appendCSVField(dst, v []byte) []byte {
	if !csvNeedsQuotes(v) {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			dst = append(dst, v...)
			break
		}
		dst = append(append(dst, v[:i+1]...), '"')
		v = v[i+1:]
	}
	return append(dst, '"')
}

// csvNeedsQuotes is encoding/csv's fieldNeedsQuotes for a comma.
func csvNeedsQuotes(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if len(v) == 2 && v[0] == '\\' && v[1] == '.' {
		return true
	}
	for _, c := range v {
		if csvSpecial[c] {
			return true
		}
	}
	if v[0] < utf8.RuneSelf {
		return csvSpace[v[0]]
	}
	r, _ := utf8.DecodeRune(v)
	return unicode.IsSpace(r)
}

var (
	// csvSpecial are the bytes that make a field quoted anywhere in it.
	csvSpecial = [256]bool{'\n': true, '\r': true, '"': true, ',': true}
	// csvSpace are the ASCII bytes unicode.IsSpace reports.
	csvSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}
)

// recordBuilder turns batches into Arrow records.
type recordBuilder struct {
	b       *array.RecordBuilder
	withRef bool
}

func newRecordBuilder(schema *arrow.Schema, withRef bool) *recordBuilder {
	return &recordBuilder{b: array.NewRecordBuilder(memory.NewGoAllocator(), schema), withRef: withRef}
}

// record builds a record of the batch; the caller releases it. String
// columns are copied in one piece each (offsets and bytes) into fresh Go
// memory: the batch is refilled once written, while Parquet's column
// statistics keep slices of the values until the row group closes.
func (rb *recordBuilder) record(b *Batch) arrow.Record {
	n := b.Len()
	f := rb.b.Fields()
	cols := make([]arrow.Array, 0, len(f))
	cols = append(cols, stringArray(&b.EventID))
	ts := f[1].(*array.TimestampBuilder)
	ts.Reserve(n)
	for _, v := range b.TsMs {
		ts.UnsafeAppend(arrow.Timestamp(v))
	}
	cols = append(cols, ts.NewArray())
	i64 := f[2].(*array.Int64Builder)
	i64.AppendValues(b.TsMs, nil)
	cols = append(cols, i64.NewArray())
	i64 = f[3].(*array.Int64Builder)
	i64.AppendValues(b.ReceivedMs, nil)
	cols = append(cols, i64.NewArray())
	for j := range StringColumns {
		cols = append(cols, stringArray(&b.Str[j]))
	}
	bg := f[4+len(StringColumns)].(*array.BooleanBuilder)
	bg.AppendValues(b.BreakGlass, nil)
	cols = append(cols, bg.NewArray())
	if rb.withRef {
		cols = append(cols, stringArray(&b.SubjectRef))
	}
	rec := array.NewRecord(rb.b.Schema(), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// stringArray copies s into a new Arrow string array.
func stringArray(s *Strings) arrow.Array {
	offs := make([]int32, s.Len()+1)
	copy(offs[1:], s.Ends)
	data := memory.NewBufferBytes(bytes.Clone(s.Data))
	if data.Len() == 0 {
		data = memory.NewBufferBytes([]byte{})
	}
	d := array.NewData(arrow.BinaryTypes.String, s.Len(),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)), data}, nil, 0, 0)
	defer d.Release()
	return array.NewStringData(d)
}

type arrowWriter struct {
	rb *recordBuilder
	w  *ipc.Writer
}

func newArrow(w io.Writer, withRef bool) (*arrowWriter, error) {
	schema := Schema(withRef)
	return &arrowWriter{rb: newRecordBuilder(schema, withRef), w: ipc.NewWriter(w, ipc.WithSchema(schema))}, nil
}

func (a *arrowWriter) Write(b *Batch) error {
	rec := a.rb.record(b)
	defer rec.Release()
	if err := a.w.Write(rec); err != nil {
		return fmt.Errorf("write arrow: %w", err)
	}
	return nil
}

func (a *arrowWriter) Close() error { return a.w.Close() }

type parquetWriter struct {
	rb *recordBuilder
	w  *pqarrow.FileWriter
}

func newParquet(w io.Writer, withRef bool) (*parquetWriter, error) {
	schema := Schema(withRef)
	// Dictionaries for every column but the unique ones. Writing without
	// them for the short repeated values (vendor, outcome, …) was ~1.7×
	// faster (Arrow's dictionary encoder allocates per value) but made a
	// fleet-shaped file ~40 % larger; an export is written once and read
	// many times, so the smaller file wins.
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(true),
		// Unique per row: a dictionary would only be built to be dropped.
		parquet.WithDictionaryFor("event_id", false),
		parquet.WithDictionaryFor("raw_ref", false),
		parquet.WithMaxRowGroupLength(1<<20),
	)
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	return &parquetWriter{rb: newRecordBuilder(schema, withRef), w: fw}, nil
}

// Write writes the batch as one row group (so memory stays one batch).
func (p *parquetWriter) Write(b *Batch) error {
	rec := p.rb.record(b)
	defer rec.Release()
	if err := p.w.Write(rec); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	return nil
}

func (p *parquetWriter) Close() error { return p.w.Close() }
