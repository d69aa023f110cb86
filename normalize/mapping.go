package normalize

import (
	"strconv"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Table is a mapping table indexed for the adapter's hot path: a lookup by
// integer or string code is a short scan without allocations.
type Table struct {
	rows  []Mapping
	ints  []int64
	isInt []bool
}

// NewTable indexes rows. Every row must name schema values that exist
// (checked by the vendors' tests through Rows).
func NewTable(rows []Mapping) *Table {
	t := &Table{rows: rows, ints: make([]int64, len(rows)), isInt: make([]bool, len(rows))}
	for i, m := range rows {
		if v, err := strconv.ParseInt(m.Code, 10, 64); err == nil {
			t.ints[i], t.isInt[i] = v, true
		}
	}
	return t
}

// Rows returns the table's rows.
func (t *Table) Rows() []Mapping { return t.rows }

// Int returns the row of an integer code.
func (t *Table) Int(code int64) (*Mapping, bool) {
	for i, v := range t.ints {
		if v == code && t.isInt[i] {
			return &t.rows[i], true
		}
	}
	return nil, false
}

// Str returns the row of a string code (exact match).
func (t *Table) Str(code string) (*Mapping, bool) {
	for i := range t.rows {
		if t.rows[i].Code == code {
			return &t.rows[i], true
		}
	}
	return nil, false
}

// Apply sets the event fields the row names (empty fields are left as they are).
func (m *Mapping) Apply(e *event.Access) {
	if m.Action != "" {
		e.Action = m.Action
	}
	if m.Outcome != "" {
		e.Outcome = m.Outcome
	}
	if m.Method != "" {
		e.Method = m.Method
	}
	if m.Reason != "" {
		e.Reason = m.Reason
	}
}

// About describes a vendor's input for the documentation: the payload shape
// and how the identifying fields are derived. Markdown is allowed.
type About struct {
	Input      string // payload shape
	Example    string // one example payload (a JSON document or a CSV line)
	LockID     string // how lock_id is derived
	EventID    string // how event_id is derived
	Time       string // which field is ts_ms
	UserRef    string // which field is the user reference (hashed, never stored raw)
	VendorCode string // what vendor_code holds
	// Dimensions says where the device and lock dimensions (lock_model,
	// lock_firmware, phone_model, os_name, os_version, app_version) come
	// from for this vendor.
	Dimensions string
	Notes      []string
}

// Described is implemented by adapters that describe their input.
type Described interface {
	About() About
}
