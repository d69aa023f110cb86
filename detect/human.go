package detect

import (
	"strconv"
	"time"
)

// humanDuration renders a duration for an explanation the way a person says
// it: "45 s", "2 min 30 s", "12 min", "3 h 20 min", "5 h", "180 days".
// Precision drops as the duration grows (seconds below 10 minutes, minutes
// below 10 hours, hours below 2 days, whole days beyond); negative durations
// read as their absolute value.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	b := make([]byte, 0, 16)
	unit := func(n int64, name string) {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(strconv.AppendInt(b, n, 10), ' ')
		b = append(b, name...)
	}
	d = d.Round(time.Second)
	if d < time.Minute {
		unit(int64(d/time.Second), "s")
		return string(b)
	}
	if d < 10*time.Minute {
		unit(int64(d/time.Minute), "min")
		if s := int64(d % time.Minute / time.Second); s > 0 {
			unit(s, "s")
		}
		return string(b)
	}
	if d = d.Round(time.Minute); d < time.Hour {
		unit(int64(d/time.Minute), "min")
		return string(b)
	}
	if d < 10*time.Hour {
		unit(int64(d/time.Hour), "h")
		if m := int64(d % time.Hour / time.Minute); m > 0 {
			unit(m, "min")
		}
		return string(b)
	}
	if d = d.Round(time.Hour); d < 48*time.Hour {
		unit(int64(d/time.Hour), "h")
		return string(b)
	}
	unit(int64(d.Round(24*time.Hour)/(24*time.Hour)), "days")
	return string(b)
}
