package report

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Week is an ISO 8601 week (Monday 00:00 UTC to the next Monday).
type Week struct {
	Year, Num int
}

var weekRE = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)

// ParseWeek reads an ISO week such as 2026-W47.
func ParseWeek(s string) (Week, error) {
	m := weekRE.FindStringSubmatch(s)
	if m == nil {
		return Week{}, fmt.Errorf("week %q: want an ISO week such as 2026-W47", s)
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	w := Week{Year: y, Num: n}
	if n < 1 || n > 53 || y < 1970 {
		return Week{}, fmt.Errorf("week %q: no such ISO week", s)
	}
	if gy, gn := w.Start().ISOWeek(); gy != y || gn != n {
		return Week{}, fmt.Errorf("week %q: %d has no week %d", s, y, n)
	}
	return w, nil
}

// WeekOf returns the ISO week that contains t.
func WeekOf(t time.Time) Week {
	y, n := t.UTC().ISOWeek()
	return Week{Year: y, Num: n}
}

// LastComplete returns the latest ISO week that ended at or before now.
func LastComplete(now time.Time) Week { return WeekOf(now.UTC()).Add(-1) }

// Start is the week's Monday 00:00 UTC.
func (w Week) Start() time.Time {
	jan4 := time.Date(w.Year, time.January, 4, 0, 0, 0, 0, time.UTC)
	monday1 := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	return monday1.AddDate(0, 0, 7*(w.Num-1))
}

// End is the next week's Monday 00:00 UTC (exclusive).
func (w Week) End() time.Time { return w.Start().AddDate(0, 0, 7) }

// Add returns the week n weeks later (earlier for negative n).
func (w Week) Add(n int) Week { return WeekOf(w.Start().AddDate(0, 0, 7*n)) }

func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Num) }
