package openapi

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// maxListItems bounds a comma-separated list parameter.
const maxListItems = 100

// Values are a request's validated parameters.
type Values struct {
	strs  map[string]string
	lists map[string][]string
	ints  map[string]int64
	times map[string]time.Time
	bools map[string]bool
}

// Has reports whether the parameter was given (or defaulted).
func (v Values) Has(name string) bool {
	_, s := v.strs[name]
	_, l := v.lists[name]
	_, i := v.ints[name]
	_, t := v.times[name]
	_, b := v.bools[name]
	return s || l || i || t || b
}

// String returns a string parameter ("" when absent).
func (v Values) String(name string) string { return v.strs[name] }

// List returns a list parameter (nil when absent).
func (v Values) List(name string) []string { return v.lists[name] }

// Int returns an integer parameter (0 when absent).
func (v Values) Int(name string) int64 { return v.ints[name] }

// Time returns a time parameter and whether it was given.
func (v Values) Time(name string) (time.Time, bool) {
	t, ok := v.times[name]
	return t, ok
}

// Bool returns a boolean parameter (false when absent).
func (v Values) Bool(name string) bool { return v.bools[name] }

// Arg is one raw request parameter.
type Arg struct {
	Name, Value string
	In          string // "query" or "path"
}

// Parse validates raw arguments against params: unknown query parameters,
// repeated ones, values of the wrong type, out of range or not in the enum,
// and missing required ones are 400 problems naming the field. now resolves
// relative times.
func Parse(params []Param, args []Arg, now time.Time) (Values, error) {
	v := Values{strs: map[string]string{}, lists: map[string][]string{}, ints: map[string]int64{},
		times: map[string]time.Time{}, bools: map[string]bool{}}
	byName := map[string]Param{}
	for _, p := range params {
		if p.In == "" {
			p.In = "query"
		}
		byName[p.In+":"+p.Name] = p
	}
	seen := map[string]bool{}
	for _, a := range args {
		in := a.In
		if in == "" {
			in = "query"
		}
		p, ok := byName[in+":"+a.Name]
		if !ok {
			if in == "path" {
				continue // described implicitly
			}
			pr := httpapi.NewProblem(fiber.StatusBadRequest, "unknown_parameter",
				fmt.Sprintf("unknown query parameter %q", printable(a.Name)))
			pr.Field = printable(a.Name)
			return Values{}, pr
		}
		if seen[in+":"+a.Name] {
			return Values{}, httpapi.BadRequest(a.Name, "given more than once")
		}
		seen[in+":"+a.Name] = true
		if err := v.set(p, a.Value, now); err != nil {
			return Values{}, err
		}
	}
	for _, p := range params {
		in := p.In
		if in == "" {
			in = "query"
		}
		if seen[in+":"+p.Name] {
			continue
		}
		if p.Required {
			return Values{}, httpapi.BadRequest(p.Name, "required")
		}
		if p.Default != "" {
			if err := v.set(p, p.Default, now); err != nil {
				return Values{}, err
			}
		}
	}
	return v, nil
}

func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

func (v *Values) set(p Param, raw string, now time.Time) error {
	bad := func(format string, args ...any) error {
		return httpapi.BadRequest(p.Name, fmt.Sprintf(format, args...))
	}
	if p.Type == "" || p.Type == TypeString {
		if err := checkText(p, raw); err != nil {
			return err
		}
	}
	switch p.Type {
	case TypeInteger:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return bad("%s must be an integer", p.Name)
		}
		if (p.Min != 0 || p.Max != 0) && (n < p.Min || n > p.Max) {
			return bad("%s must be between %d and %d", p.Name, p.Min, p.Max)
		}
		v.ints[p.Name] = n
	case TypeBoolean:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return bad("%s must be true or false", p.Name)
		}
		v.bools[p.Name] = b
	case TypeTime:
		t, err := ParseTime(raw, now)
		if err != nil {
			return bad("%s: %v", p.Name, err)
		}
		v.times[p.Name] = t
	default:
		if p.List {
			items := strings.Split(raw, ",")
			if len(items) > maxListItems {
				return bad("%s has more than %d values", p.Name, maxListItems)
			}
			var out []string
			for _, it := range items {
				it = strings.TrimSpace(it)
				if it == "" {
					return bad("%s has an empty value", p.Name)
				}
				if len(it) > maxLen(p) {
					return bad("%s has a value longer than %d bytes", p.Name, maxLen(p))
				}
				if len(p.Enum) > 0 && !slices.Contains(p.Enum, it) {
					return bad("%s: %q is not one of %s", p.Name, printable(it), strings.Join(p.Enum, ", "))
				}
				if !slices.Contains(out, it) {
					out = append(out, it)
				}
			}
			v.lists[p.Name] = out
			return nil
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, raw) {
			return bad("%s: %q is not one of %s", p.Name, printable(raw), strings.Join(p.Enum, ", "))
		}
		if p.Pattern != "" {
			if ok, err := regexp.MatchString(p.Pattern, raw); err != nil || !ok {
				return bad("%s: %q does not match %s", p.Name, printable(raw), p.Pattern)
			}
		}
		v.strs[p.Name] = raw
	}
	return nil
}

func checkText(p Param, raw string) error {
	if raw == "" {
		return httpapi.BadRequest(p.Name, p.Name+" is empty")
	}
	limit := maxLen(p)
	if p.List {
		limit *= maxListItems
	}
	if len(raw) > limit {
		return httpapi.BadRequest(p.Name, fmt.Sprintf("%s is longer than %d bytes", p.Name, limit))
	}
	for _, r := range raw {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return httpapi.BadRequest(p.Name, p.Name+" contains a control or invalid character")
		}
	}
	return nil
}

// ParseTime reads an RFC 3339 time, a date (2026-12-01: the start of that
// day, UTC), epoch milliseconds, "now", or "now-<duration>" (Go durations
// plus d for days: now-24h, now-7d).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		d, err := ParseDuration(rest)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("%q: want now-<duration> such as now-24h or now-7d", s)
		}
		return now.Add(-d), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > 1<<50 {
			return time.Time{}, fmt.Errorf("%d is out of range", ms)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, start of day UTC), "+
			"epoch milliseconds, or now-<duration>", s)
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%q is out of range", s)
	}
	return t.UTC(), nil
}

// ParseDuration is time.ParseDuration plus a d (24h) unit: 7d, 400d, 36h.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q: want a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Args collects a request's query and path parameters, copied (nothing
// from the fiber context outlives the handler). Path parameters are
// percent-decoded (httpapi.PathParam; the server already refused malformed
// ones).
func Args(c *fiber.Ctx) []Arg {
	var args []Arg
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		args = append(args, Arg{Name: string(k), Value: string(v), In: "query"})
	})
	for _, name := range c.Route().Params {
		v, err := httpapi.PathParam(c, name)
		if err != nil {
			v = strings.Clone(c.Params(name))
		}
		args = append(args, Arg{Name: name, Value: v, In: "path"})
	}
	return args
}
