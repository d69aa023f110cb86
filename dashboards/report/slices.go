package report

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// DefaultSlicers are the per-dimension tables every report carries unless
// Query.Slicers says otherwise: access by site and by vendor, and by lock
// firmware and OS version (issue 19; a device or lock table whose every
// event has the dimension unknown is left out).
var DefaultSlicers = []Slicer{AccessBy("site"), AccessBy("vendor"), AccessBy("lock_firmware"), AccessBy("os_version")}

// SliceDimensions are the dimensions AccessBy slices by.
var SliceDimensions = []string{"site", "vendor", "lock_model", "lock_firmware", "phone_model", "os_version", "app_version"}

// optionalDims are the device and lock dimensions: a table of only unknown
// keys is not shown.
var optionalDims = map[string]bool{"lock_model": true, "lock_firmware": true, "phone_model": true, "os_version": true, "app_version": true}

// SlicersFor returns AccessBy of each dimension, in order; an unknown one is
// an error.
func SlicersFor(dims []string) ([]Slicer, error) {
	out := []Slicer{}
	for _, d := range dims {
		if !slices.Contains(SliceDimensions, d) {
			return nil, fmt.Errorf("slice by %q: want one of %v", d, SliceDimensions)
		}
		out = append(out, AccessBy(d))
	}
	return out, nil
}

var accessBySQL = chstorage.Query("report/access_by")

// AccessBy slices the period's access events by one of SliceDimensions:
// events, denied, the share denied (%, one decimal), offline and battery-low
// reports, and distinct subjects (a site-scoped report keeps to its site).
// An os_version key is "<os_name> <os_version>"; an unknown value is
// "(none)". A device or lock dimension with no known value gives a table
// without rows, which the report leaves out.
func AccessBy(dim string) Slicer {
	return func(ctx context.Context, conn driver.Conn, q Query) (Slices, error) {
		out := Slices{Dimension: dim,
			Columns: []string{"events", "denied", "denied_pct", "offline", "battery_low", "subjects"},
			Labels:  []string{"access events", "denied", "denied %", "offline reports", "battery low", "subjects"},
			Rows:    []SliceRow{}}
		if !slices.Contains(SliceDimensions, dim) {
			return out, fmt.Errorf("slice by %q: want one of %v", dim, SliceDimensions)
		}
		p := q.period()
		from, to := p.Start(), p.End()
		rows, err := accessBySQL.Query(ctx, conn, chstorage.Args{"dim": dim, "from": secs(from), "to": secs(to),
			"from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(), "site": q.Site})
		if err != nil {
			return out, fmt.Errorf("access by %s: %w", dim, err)
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			var events, denied, offline, battery, subjects uint64
			if err := rows.Scan(&key, &events, &denied, &offline, &battery, &subjects); err != nil {
				return out, fmt.Errorf("access by %s: %w", dim, err)
			}
			if key == "" {
				key = "(none)"
			}
			vals := []float64{float64(events), float64(denied), 0, float64(offline), float64(battery), float64(subjects)}
			row := SliceRow{Key: key, Values: make([]*float64, len(vals))}
			for i := range vals {
				row.Values[i] = &vals[i]
			}
			if events > 0 {
				vals[2] = math.Round(1000*float64(denied)/float64(events)) / 10
			} else {
				row.Values[2] = nil
			}
			out.Rows = append(out.Rows, row)
		}
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("access by %s: %w", dim, err)
		}
		if optionalDims[dim] && len(out.Rows) == 1 && out.Rows[0].Key == "(none)" {
			out.Rows = out.Rows[:0]
		}
		return out, nil
	}
}
