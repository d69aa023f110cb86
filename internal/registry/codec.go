package registry

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Row is one lock of a bulk import: the lock, and whether it is to be
// retired.
type Row struct {
	Lock
	Retired bool   `json:"retired,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Line    int    `json:"-"` // CSV line or JSON array index + 1
}

// CSVColumns are the columns of a lock CSV. A header row names them in any
// order; vendor and lock_id are required. groups are separated by ';'.
// Export adds version; import ignores it, so an export imports again.
var CSVColumns = []string{"vendor", "lock_id", "site_id", "zone_id", "door_id", "groups", "model", "firmware", "tier", "retired", "version"}

// MaxRows bounds one bulk import.
const MaxRows = 100_000

// RowError is a refused row of a bulk import.
type RowError struct {
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// ParseCSV reads a lock CSV. Every row is checked (Lock.Validate); the
// error joins a *RowError per refused row (at most 100 are kept), and a
// file that is not CSV at all is refused whole. A lock given twice is an
// error.
func ParseCSV(data []byte) ([]Row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(CSVColumns, h) {
			return nil, fmt.Errorf("unknown CSV column %q (known: %s)", h, strings.Join(CSVColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("CSV column %q given twice", h)
		}
		col[h] = i
	}
	for _, req := range []string{"vendor", "lock_id"} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("CSV header lacks %s", req)
		}
	}
	var rows []Row
	var errs rowErrors
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
		if len(rows) >= MaxRows {
			return nil, fmt.Errorf("more than %d rows: split the file", MaxRows)
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := Row{Line: line, Lock: Lock{Vendor: get("vendor"), LockID: get("lock_id"), Model: get("model"), Firmware: get("firmware"),
			LockInfo: LockInfo{SiteID: get("site_id"), ZoneID: get("zone_id"), DoorID: get("door_id")}}}
		if g := get("groups"); g != "" {
			for _, s := range strings.Split(g, ";") {
				row.Groups = append(row.Groups, strings.TrimSpace(s))
			}
		}
		var rowErr []error
		if t := get("tier"); t != "" {
			if row.Tier, err = strconv.Atoi(t); err != nil {
				rowErr = append(rowErr, fmt.Errorf("tier %q: want a number", t))
			}
		}
		if v := get("retired"); v != "" {
			if row.Retired, err = strconv.ParseBool(v); err != nil {
				rowErr = append(rowErr, fmt.Errorf("retired %q: want true or false", v))
			}
		}
		if err := errors.Join(append(rowErr, row.Lock.Validate())...); err != nil {
			errs.add(line, err)
		}
		rows = append(rows, row)
	}
	return rows, errs.check(rows)
}

// ParseJSON reads a JSON array of locks (the fields of Lock, plus retired
// and reason; the version, op, actor and ts_ms of an export are ignored).
// Unknown fields are errors.
func ParseJSON(data []byte) ([]Row, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON array of locks: %w", err)
	}
	if len(raw) > MaxRows {
		return nil, fmt.Errorf("more than %d rows: split the file", MaxRows)
	}
	rows := make([]Row, 0, len(raw))
	var errs rowErrors
	for i, m := range raw {
		var in struct {
			Row
			Version uint64 `json:"version"`
			Op      string `json:"op"`
			Actor   string `json:"actor"`
			TsMs    int64  `json:"ts_ms"`
		}
		d := json.NewDecoder(bytes.NewReader(m))
		d.DisallowUnknownFields()
		err := d.Decode(&in)
		if err == nil {
			err = in.Lock.Validate()
		}
		if err != nil {
			errs.add(i+1, err)
		}
		in.Row.Line = i + 1
		rows = append(rows, in.Row)
	}
	return rows, errs.check(rows)
}

type rowErrors []error

func (e *rowErrors) add(line int, err error) {
	if len(*e) < 100 {
		*e = append(*e, &RowError{Line: line, Err: err})
	}
}

// check adds an error for every lock given twice and joins them.
func (e *rowErrors) check(rows []Row) error {
	seen := map[lockKey]int{}
	for _, r := range rows {
		k := lockKey{r.Vendor, r.LockID}
		if first, ok := seen[k]; ok {
			e.add(r.Line, fmt.Errorf("lock %s/%s is also on line %d", r.Vendor, r.LockID, first))
			continue
		}
		seen[k] = r.Line
	}
	return errors.Join(*e...)
}

// WriteCSV writes records as a lock CSV (CSVColumns, header first).
func WriteCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return err
	}
	for _, r := range recs {
		if err := cw.Write([]string{r.Vendor, r.LockID, r.SiteID, r.ZoneID, r.DoorID, strings.Join(r.Groups, ";"), r.Model,
			r.Firmware, strconv.Itoa(r.Tier), strconv.FormatBool(r.Retired), strconv.FormatUint(r.Version, 10)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
