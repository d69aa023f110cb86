// Package export writes access events as CSV, Arrow IPC streams or Parquet
// files, one columnar Batch at a time, so an export of millions of rows uses
// the memory of one batch.
package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

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

// Batch is a block of rows, column by column.
type Batch struct {
	EventID    []string
	TsMs       []int64
	ReceivedMs []int64
	Str        [15][]string // StringColumns
	BreakGlass []bool
	SubjectRef []string // only in re-identified exports
}

// Len is the number of rows.
func (b *Batch) Len() int { return len(b.EventID) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.EventID = b.EventID[:0]
	b.TsMs = b.TsMs[:0]
	b.ReceivedMs = b.ReceivedMs[:0]
	for i := range b.Str {
		clear(b.Str[i])
		b.Str[i] = b.Str[i][:0]
	}
	b.BreakGlass = b.BreakGlass[:0]
	clear(b.SubjectRef)
	b.SubjectRef = b.SubjectRef[:0]
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

type csvWriter struct {
	buf     *bufio.Writer
	w       *csv.Writer
	withRef bool
	rec     []string
}

func newCSV(w io.Writer, withRef bool) (*csvWriter, error) {
	buf := bufio.NewWriterSize(w, 256<<10)
	cw := &csvWriter{buf: buf, w: csv.NewWriter(buf), withRef: withRef}
	var header []string
	for _, f := range Schema(withRef).Fields() {
		header = append(header, f.Name)
	}
	cw.rec = make([]string, len(header))
	return cw, cw.w.Write(header)
}

func (c *csvWriter) Write(b *Batch) error {
	var tsBuf []byte
	for i := 0; i < b.Len(); i++ {
		r := c.rec
		r[0] = b.EventID[i]
		tsBuf = time.UnixMilli(b.TsMs[i]).UTC().AppendFormat(tsBuf[:0], "2006-01-02T15:04:05.000Z")
		r[1] = string(tsBuf)
		r[2] = strconv.FormatInt(b.TsMs[i], 10)
		r[3] = strconv.FormatInt(b.ReceivedMs[i], 10)
		for j := range StringColumns {
			r[4+j] = b.Str[j][i]
		}
		r[4+len(StringColumns)] = strconv.FormatBool(b.BreakGlass[i])
		if c.withRef {
			r[5+len(StringColumns)] = b.SubjectRef[i]
		}
		if err := c.w.Write(r); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return c.buf.Flush()
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.buf.Flush()
}

// recordBuilder turns batches into Arrow records.
type recordBuilder struct {
	b       *array.RecordBuilder
	withRef bool
}

func newRecordBuilder(schema *arrow.Schema, withRef bool) *recordBuilder {
	return &recordBuilder{b: array.NewRecordBuilder(memory.NewGoAllocator(), schema), withRef: withRef}
}

// record builds a record of the batch; the caller releases it.
func (rb *recordBuilder) record(b *Batch) arrow.Record {
	n := b.Len()
	f := rb.b.Fields()
	id := f[0].(*array.StringBuilder)
	reserve(id, b.EventID)
	id.AppendValues(b.EventID, nil)
	ts := f[1].(*array.TimestampBuilder)
	ts.Reserve(n)
	for _, v := range b.TsMs {
		ts.UnsafeAppend(arrow.Timestamp(v))
	}
	f[2].(*array.Int64Builder).AppendValues(b.TsMs, nil)
	f[3].(*array.Int64Builder).AppendValues(b.ReceivedMs, nil)
	for j := range StringColumns {
		sb := f[4+j].(*array.StringBuilder)
		reserve(sb, b.Str[j])
		sb.AppendValues(b.Str[j], nil)
	}
	f[4+len(StringColumns)].(*array.BooleanBuilder).AppendValues(b.BreakGlass, nil)
	if rb.withRef {
		sb := f[5+len(StringColumns)].(*array.StringBuilder)
		reserve(sb, b.SubjectRef)
		sb.AppendValues(b.SubjectRef, nil)
	}
	return rb.b.NewRecord()
}

// reserve sizes a string builder once for vals (growing it value by value
// copies its data over and over).
func reserve(sb *array.StringBuilder, vals []string) {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	sb.Reserve(len(vals))
	sb.ReserveData(n)
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
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(true),
		// Unique per row: a dictionary would only be built to be dropped.
		parquet.WithDictionaryFor("event_id", false),
		parquet.WithDictionaryFor("raw_ref", false),
		parquet.WithDictionaryFor("ts", false),
		parquet.WithDictionaryFor("ts_ms", false),
		parquet.WithDictionaryFor("received_ms", false),
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
