// Package feed is the HR/tenant feed of identity sync: a CSV or JSON file
// of people (one row each, keyed by the HR system's employee or tenant id)
// is compared with the identities keyfleet holds and the difference is
// written through the SCIM service provider's own write path, so it
// produces the same joiner/mover/leaver changes as an identity provider
// pushing SCIM. A dry run returns the plan without writing.
//
// A feed owns the users it created (the access extension's source): a
// full import deactivates the feed's users it no longer lists (leavers);
// users pushed over SCIM, or by another feed, are never touched, and a row
// whose externalId such a user holds is reported as a conflict.
package feed

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Person is one row of a feed.
type Person struct {
	// ExternalID is the HR system's id of the person (required, unique).
	ExternalID  string `json:"external_id"`
	UserName    string `json:"user_name,omitempty"` // default: ExternalID
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
	// Active is false for someone who left (default true).
	Active bool `json:"active"`
	// EndDate is when access ends (zero: none).
	EndDate time.Time `json:"end_date,omitzero"`
	Site    string    `json:"site,omitempty"`
	// Groups are group display names; the role mapping turns them into
	// credentials.
	Groups []string `json:"groups,omitempty"`
	// SubjectID links the person to an existing pseudonymous subject id
	// (credentials issued before identity sync).
	SubjectID string `json:"subject_id,omitempty"`
}

// Formats of a feed file.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// Columns are the CSV columns (header names, any order, case-insensitive);
// external_id is required, the others optional. groups is separated by ;.
var Columns = []string{"external_id", "user_name", "given_name", "family_name", "display_name", "email", "active",
	"end_date", "site", "groups", "subject_id"}

// MaxPeople bounds one file.
const MaxPeople = 200000

// RowError is a refusal of one row.
type RowError struct {
	Row    int // 1-based data row (CSV: the line after the header is 1)
	Field  string
	Reason string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Reason)
	}
	return fmt.Sprintf("row %d: %s: %s", e.Row, e.Field, e.Reason)
}

// Parse reads a feed: format is csv, json, or "" to tell by the first
// byte ([ or { is JSON). JSON is an array of objects with the CSV's
// column names as keys (groups an array or a ;-separated string, active a
// boolean or string).
func Parse(data []byte, format string) ([]Person, error) {
	if format == "" {
		format = FormatCSV
		if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
			format = FormatJSON
		}
	}
	var people []Person
	var err error
	switch format {
	case FormatCSV:
		people, err = parseCSV(data)
	case FormatJSON:
		people, err = parseJSON(data)
	default:
		return nil, fmt.Errorf("feed format %q: want csv or json", format)
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for i, p := range people {
		if j, ok := seen[p.ExternalID]; ok {
			return nil, &RowError{Row: i + 1, Field: "external_id", Reason: fmt.Sprintf("%q repeats row %d", p.ExternalID, j)}
		}
		seen[p.ExternalID] = i + 1
	}
	return people, nil
}

func parseCSV(data []byte) ([]Person, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("feed: empty file (want a header line naming the columns)")
	}
	if err != nil {
		return nil, fmt.Errorf("feed header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(Columns, h) {
			return nil, fmt.Errorf("feed header: unknown column %q (known: %s)", h, strings.Join(Columns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("feed header: column %q twice", h)
		}
		col[h] = i
	}
	if _, ok := col["external_id"]; !ok {
		return nil, errors.New("feed header: external_id column is required")
	}
	var out []Person
	for row := 1; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &RowError{Row: row, Reason: err.Error()}
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) > len(header) {
			return nil, &RowError{Row: row, Reason: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))}
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		fields := map[string]any{}
		for _, c := range Columns {
			if v := get(c); v != "" {
				fields[c] = v
			}
		}
		p, rerr := person(row, fields)
		if rerr != nil {
			return nil, rerr
		}
		out = append(out, p)
		if len(out) > MaxPeople {
			return nil, fmt.Errorf("feed: more than %d people in one file", MaxPeople)
		}
	}
	return out, nil
}

func parseJSON(data []byte) ([]Person, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var rows []map[string]any
	if err := d.Decode(&rows); err != nil {
		return nil, fmt.Errorf("feed: want a JSON array of objects: %w", err)
	}
	if len(rows) > MaxPeople {
		return nil, fmt.Errorf("feed: more than %d people in one file", MaxPeople)
	}
	out := make([]Person, 0, len(rows))
	for i, m := range rows {
		for k := range m {
			if !slices.Contains(Columns, k) {
				return nil, &RowError{Row: i + 1, Field: k, Reason: "unknown field"}
			}
		}
		p, err := person(i+1, m)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// person validates one row's fields (strings, or JSON values).
func person(row int, f map[string]any) (Person, *RowError) {
	bad := func(field, format string, args ...any) *RowError {
		return &RowError{Row: row, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	str := func(name string) (string, *RowError) {
		switch v := f[name].(type) {
		case nil:
			return "", nil
		case string:
			v = strings.TrimSpace(v)
			if len(v) > 512 {
				return "", bad(name, "longer than 512 characters")
			}
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return "", bad(name, "has a control character")
			}
			return v, nil
		}
		return "", bad(name, "want a string")
	}
	p := Person{Active: true}
	var err *RowError
	for _, s := range []struct {
		name string
		dst  *string
	}{{"external_id", &p.ExternalID}, {"user_name", &p.UserName}, {"given_name", &p.GivenName},
		{"family_name", &p.FamilyName}, {"display_name", &p.DisplayName}, {"email", &p.Email}, {"site", &p.Site},
		{"subject_id", &p.SubjectID}} {
		if *s.dst, err = str(s.name); err != nil {
			return Person{}, err
		}
	}
	if p.ExternalID == "" {
		return Person{}, bad("external_id", "required")
	}
	if p.UserName == "" {
		p.UserName = p.ExternalID
	}
	if p.SubjectID != "" && (strings.ContainsAny(p.SubjectID, " \t@") || len(p.SubjectID) > 128) {
		return Person{}, bad("subject_id", "want a pseudonymous id (no whitespace, no e-mail address, at most 128 characters)")
	}
	if p.Email != "" && !strings.Contains(p.Email, "@") {
		return Person{}, bad("email", "not an e-mail address")
	}
	switch v := f["active"].(type) {
	case nil:
	case bool:
		p.Active = v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "true", "1", "yes", "y", "active":
		case "false", "0", "no", "n", "inactive":
			p.Active = false
		default:
			return Person{}, bad("active", "want true or false")
		}
	default:
		return Person{}, bad("active", "want true or false")
	}
	switch v := f["end_date"].(type) {
	case nil:
	case string:
		v = strings.TrimSpace(v)
		if v == "" {
			break
		}
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			if t, perr = time.Parse(time.DateOnly, v); perr != nil {
				return Person{}, bad("end_date", "want RFC 3339 (2026-05-31T18:00:00Z) or a date (2026-05-31, the end of that day UTC)")
			}
			t = t.Add(24*time.Hour - time.Second)
		}
		p.EndDate = t.UTC()
	default:
		return Person{}, bad("end_date", "want a string")
	}
	switch v := f["groups"].(type) {
	case nil:
	case string:
		for _, g := range strings.Split(v, ";") {
			if g = strings.TrimSpace(g); g != "" {
				p.Groups = append(p.Groups, g)
			}
		}
	case []any:
		for _, e := range v {
			g, ok := e.(string)
			if !ok {
				return Person{}, bad("groups", "want strings")
			}
			if g = strings.TrimSpace(g); g != "" {
				p.Groups = append(p.Groups, g)
			}
		}
	default:
		return Person{}, bad("groups", "want an array or a ;-separated string")
	}
	for _, g := range p.Groups {
		if len(g) > 256 || strings.ContainsFunc(g, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Person{}, bad("groups", "a group name is longer than 256 characters or has a control character")
		}
	}
	sort.Strings(p.Groups)
	p.Groups = slices.CompactFunc(p.Groups, strings.EqualFold)
	return p, nil
}
