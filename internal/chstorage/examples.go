package chstorage

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Variant is one way the checker runs a statement: its header's examples,
// each other word of a Choice, or every section left out.
type Variant struct {
	Label string // "" for the examples as written, else what differs
	Args  Args
}

// Variants returns the argument sets the checker runs the statement with:
// the examples (every section kept), once more per other word of each
// Choice, and once with every section's gate zero (sections left out, else
// branches taken).
func (s *Statement) Variants() []Variant {
	base := Args{}
	for _, p := range s.Params {
		v, _ := p.example() // checked by parseStatement
		base[p.Name] = v
	}
	out := []Variant{{Args: base}}
	for _, p := range s.Params {
		for _, c := range p.Choices[min(1, len(p.Choices)):] {
			a := copyArgs(base)
			a[p.Name] = c
			out = append(out, Variant{Label: p.Name + "=" + c, Args: a})
		}
	}
	if len(s.gates) > 0 {
		a := copyArgs(base)
		var names []string
		for g := range s.gates {
			a[g] = zeroOf(s.params[g].Type)
			names = append(names, g)
		}
		sort.Strings(names)
		out = append(out, Variant{Label: "without " + strings.Join(names, ", "), Args: a})
	}
	return out
}

// ExampleRow returns a batch insert's example row, in Columns order.
func (s *Statement) ExampleRow() []any {
	row := make([]any, len(s.columns))
	for i, c := range s.columns {
		row[i], _ = s.params[c].example()
	}
	return row
}

func copyArgs(a Args) Args {
	out := make(Args, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}

func zeroOf(typ string) any {
	switch typ {
	case "Fragment":
		return Fragment{}
	case "Choice", "Identifier", "String", "UUID":
		return ""
	case "Bool":
		return false
	case "DateTime":
		return time.Time{}
	}
	if w, _ := elemType(typ); w != "" {
		return []any{}
	}
	return 0
}

// example parses the header's example into a Go value of the param's type.
func (p *Param) example() (any, error) {
	switch p.Type {
	case "Fragment":
		return Fragment{SQL: p.Example}, nil
	case "Choice":
		return p.Choices[0], nil
	case "Identifier":
		if !choiceRE.MatchString(p.Example) {
			return nil, fmt.Errorf("%q is not a name", p.Example)
		}
		return p.Example, nil
	}
	wrapper, elem := elemType(p.Type)
	if wrapper == "" {
		return parseLiteral(elem, p.Example)
	}
	text := strings.TrimSpace(p.Example)
	if !strings.HasPrefix(text, "[") || !strings.HasSuffix(text, "]") {
		return nil, fmt.Errorf("want [a, b, …], got %s", text)
	}
	items := splitList(text[1 : len(text)-1])
	var out reflect.Value
	for i, it := range items {
		v, err := parseLiteral(elem, it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		if i == 0 {
			out = reflect.MakeSlice(reflect.SliceOf(reflect.TypeOf(v)), 0, len(items))
		}
		out = reflect.Append(out, reflect.ValueOf(v))
	}
	if len(items) == 0 {
		if wrapper == "Set" {
			return nil, fmt.Errorf("a Set example needs an item")
		}
		return []string{}, nil
	}
	return out.Interface(), nil
}

// splitList splits on commas outside string literals.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	start := 0
	scanSQL(s, func(i int, code bool) {
		if code && s[i] == ',' {
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	})
	return append(out, strings.TrimSpace(s[start:]))
}

// parseLiteral reads one ClickHouse literal of a scalar type: 'text' (with
// \\ and \' escapes), a number, or 'YYYY-MM-DD hh:mm:ss' (UTC) for DateTime.
func parseLiteral(typ, text string) (any, error) {
	text = strings.TrimSpace(text)
	str := func() (string, error) {
		if len(text) < 2 || text[0] != '\'' || text[len(text)-1] != '\'' {
			return "", fmt.Errorf("want a quoted string, got %s", text)
		}
		var b strings.Builder
		in := text[1 : len(text)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) {
				i++
			} else if in[i] == '\'' {
				return "", fmt.Errorf("unescaped ' in %s", text)
			}
			b.WriteByte(in[i])
		}
		return b.String(), nil
	}
	switch typ {
	case "String", "UUID":
		return str()
	case "DateTime":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return time.ParseInLocation(time.DateTime, s, time.UTC)
	case "Bool":
		return strconv.ParseBool(text)
	case "Float32", "Float64":
		return strconv.ParseFloat(text, 64)
	}
	bits, _ := strconv.Atoi(strings.TrimLeft(typ, "UInt"))
	if strings.HasPrefix(typ, "UInt") {
		v, err := strconv.ParseUint(text, 10, bits)
		if err != nil {
			return nil, err
		}
		switch bits {
		case 8:
			return uint8(v), nil
		case 16:
			return uint16(v), nil
		case 32:
			return uint32(v), nil
		}
		return v, nil
	}
	v, err := strconv.ParseInt(text, 10, bits)
	if err != nil {
		return nil, err
	}
	switch bits {
	case 8:
		return int8(v), nil
	case 16:
		return int16(v), nil
	case 32:
		return int32(v), nil
	}
	return v, nil
}

// Inline returns sql with each ? placeholder replaced by its argument as a
// SQL literal: the statement as text, for an engine reached without
// clickhouse-go (the checker's chDB). Times render in UTC.
func Inline(sql string, args []any) (string, error) {
	var b strings.Builder
	n := 0
	var err error
	scanSQL(sql, func(i int, code bool) {
		if !code || sql[i] != '?' {
			b.WriteByte(sql[i])
			return
		}
		if n >= len(args) {
			err = fmt.Errorf("more placeholders than %d args", len(args))
			return
		}
		lit, lerr := Literal(args[n])
		if lerr != nil && err == nil {
			err = lerr
		}
		b.WriteString(lit)
		n++
	})
	if err == nil && n != len(args) {
		err = fmt.Errorf("%d placeholders for %d args", n, len(args))
	}
	return b.String(), err
}

var literalQuoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// Literal renders a Go value as a ClickHouse literal.
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + literalQuoter.Replace(v) + "'", nil
	case time.Time:
		return "toDateTime('" + v.UTC().Format(time.DateTime) + "', 'UTC')", nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case clickhouse.GroupSet:
		s, err := Literal(v.Value)
		if err != nil {
			return "", err
		}
		return "(" + s[1:len(s)-1] + ")", nil
	case fmt.Stringer:
		return Literal(v.String())
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64), nil
	case reflect.Slice:
		items := make([]string, rv.Len())
		for i := range items {
			s, err := Literal(rv.Index(i).Interface())
			if err != nil {
				return "", err
			}
			items[i] = s
		}
		return "[" + strings.Join(items, ", ") + "]", nil
	}
	return "", fmt.Errorf("no literal for %T", v)
}
