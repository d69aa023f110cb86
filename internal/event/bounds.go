package event

import (
	"errors"
	"fmt"
	"time"
)

// TimeWindow bounds the event times keyfleet accepts: from Min to Ahead past
// the time of receipt. Times outside it are refused with
// ReasonTimeOutOfRange (dead-lettered from Kafka, a per-record reason on HTTP
// ingest): ClickHouse's DateTime wraps after 2106, and a wrapped time lands
// in a partition the retention job drops.
type TimeWindow struct {
	Min   time.Time
	Ahead time.Duration
}

// DefaultTimeWindow accepts 2000-01-01 to seven days ahead.
var DefaultTimeWindow = TimeWindow{Min: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Ahead: 7 * 24 * time.Hour}

// ReasonTimeOutOfRange is the refusal reason (DLQ reason, ingest reason).
const ReasonTimeOutOfRange = "time_out_of_range"

// ErrTimeOutOfRange is wrapped by TimeWindow.Check's errors.
var ErrTimeOutOfRange = errors.New("event time out of range")

// maxDateTime is the last second ClickHouse's DateTime (UInt32) holds.
var maxDateTime = time.Unix(1<<32-1, 0).UTC()

// Validate checks the window itself.
func (w TimeWindow) Validate() error {
	if w.Min.Before(time.Unix(0, 0)) || !w.Min.Before(maxDateTime) {
		return fmt.Errorf("earliest event time %s: want 1970-01-01 or later and before 2106", w.Min.Format(time.DateOnly))
	}
	if w.Ahead < 0 || w.Ahead > 366*24*time.Hour {
		return fmt.Errorf("event times ahead %s: want 0 to 366 days", w.Ahead)
	}
	return nil
}

// Check returns an error wrapping ErrTimeOutOfRange when tsMs (epoch ms) is
// outside the window as of nowMs.
func (w TimeWindow) Check(tsMs, nowMs int64) error {
	if w.Min.IsZero() && w.Ahead == 0 {
		w = DefaultTimeWindow
	}
	minMs := w.Min.UnixMilli()
	maxMs := min(nowMs+w.Ahead.Milliseconds(), maxDateTime.UnixMilli())
	switch {
	case tsMs < minMs:
		return fmt.Errorf("%w: %s is before %s", ErrTimeOutOfRange, formatMs(tsMs), w.Min.UTC().Format(time.DateOnly))
	case tsMs > maxMs:
		return fmt.Errorf("%w: %s is more than %s after its receipt (%s)", ErrTimeOutOfRange, formatMs(tsMs), w.Ahead, formatMs(nowMs))
	}
	return nil
}

// formatMs renders epoch milliseconds for a reason, even absurd ones.
func formatMs(ms int64) string {
	if ms < -62135596800000 || ms > 253402300799999 { // outside years 1..9999
		return fmt.Sprintf("%d ms", ms)
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// Month is the monthly partition an event time falls in (yyyymm, UTC), as
// ClickHouse's toYYYYMM(ts).
func Month(tsMs int64) int {
	t := time.UnixMilli(tsMs).UTC()
	return t.Year()*100 + int(t.Month())
}
