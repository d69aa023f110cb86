package report

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Period is what a report covers: an ISO week (the weekly report), a
// calendar month or a quarter (the monthly and quarterly reviews); the same
// generator computes each, against the previous DefaultTrendWeeks periods.
type Period interface {
	Start() time.Time
	End() time.Time // exclusive
	String() string
	// Kind is week, month or quarter.
	Kind() string
	// Prev is the period n periods earlier.
	Prev(n int) Period
}

// Period kinds.
const (
	KindWeek    = "week"
	KindMonth   = "month"
	KindQuarter = "quarter"
)

// Kind implements Period.
func (w Week) Kind() string { return KindWeek }

// Prev implements Period.
func (w Week) Prev(n int) Period { return w.Add(-n) }

// Month is a calendar month (UTC).
type Month struct {
	Year  int
	Month time.Month
}

var monthRE = regexp.MustCompile(`^(\d{4})-(\d{2})$`)

// ParseMonth reads a month such as 2026-11.
func ParseMonth(s string) (Month, error) {
	m := monthRE.FindStringSubmatch(s)
	if m == nil {
		return Month{}, fmt.Errorf("month %q: want a month such as 2026-11", s)
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	if y < 1970 || n < 1 || n > 12 {
		return Month{}, fmt.Errorf("month %q: no such month", s)
	}
	return Month{Year: y, Month: time.Month(n)}, nil
}

// MonthOf is the month that contains t.
func MonthOf(t time.Time) Month { t = t.UTC(); return Month{Year: t.Year(), Month: t.Month()} }

func (m Month) Start() time.Time  { return time.Date(m.Year, m.Month, 1, 0, 0, 0, 0, time.UTC) }
func (m Month) End() time.Time    { return m.Start().AddDate(0, 1, 0) }
func (m Month) String() string    { return fmt.Sprintf("%04d-%02d", m.Year, int(m.Month)) }
func (m Month) Kind() string      { return KindMonth }
func (m Month) Prev(n int) Period { return MonthOf(m.Start().AddDate(0, -n, 0)) }

// Quarter is a calendar quarter (UTC): Q1 is January to March.
type Quarter struct {
	Year, Q int
}

var quarterRE = regexp.MustCompile(`^(\d{4})-Q([1-4])$`)

// ParseQuarter reads a quarter such as 2026-Q4.
func ParseQuarter(s string) (Quarter, error) {
	m := quarterRE.FindStringSubmatch(s)
	if m == nil {
		return Quarter{}, fmt.Errorf("quarter %q: want a quarter such as 2026-Q4", s)
	}
	y, _ := strconv.Atoi(m[1])
	q, _ := strconv.Atoi(m[2])
	if y < 1970 {
		return Quarter{}, fmt.Errorf("quarter %q: no such quarter", s)
	}
	return Quarter{Year: y, Q: q}, nil
}

// QuarterOf is the quarter that contains t.
func QuarterOf(t time.Time) Quarter {
	t = t.UTC()
	return Quarter{Year: t.Year(), Q: (int(t.Month())-1)/3 + 1}
}

func (q Quarter) Start() time.Time {
	return time.Date(q.Year, time.Month(3*(q.Q-1)+1), 1, 0, 0, 0, 0, time.UTC)
}
func (q Quarter) End() time.Time    { return q.Start().AddDate(0, 3, 0) }
func (q Quarter) String() string    { return fmt.Sprintf("%04d-Q%d", q.Year, q.Q) }
func (q Quarter) Kind() string      { return KindQuarter }
func (q Quarter) Prev(n int) Period { return QuarterOf(q.Start().AddDate(0, -3*n, 0)) }

// LastCompletePeriod is the latest period of a kind that ended at or
// before now.
func LastCompletePeriod(kind string, now time.Time) Period {
	switch kind {
	case KindMonth:
		return MonthOf(now).Prev(1)
	case KindQuarter:
		return QuarterOf(now).Prev(1)
	}
	return LastComplete(now)
}

// ParsePeriod reads a period of a kind.
func ParsePeriod(kind, s string) (Period, error) {
	switch kind {
	case KindMonth:
		return ParseMonth(s)
	case KindQuarter:
		return ParseQuarter(s)
	}
	return ParseWeek(s)
}
