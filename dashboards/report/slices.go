package report

import (
	"context"
	"fmt"
	"math"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// DefaultSlicers are the per-dimension tables every report carries unless
// Query.Slicers says otherwise: access by site and by vendor.
var DefaultSlicers = []Slicer{AccessBy("site"), AccessBy("vendor")}

var accessBySQL = chstorage.Query("report/access_by")

// AccessBy slices the period's access events by "site" or "vendor": events,
// denied, the share denied (%, one decimal), offline and battery-low reports, and distinct
// subjects (a site-scoped report keeps to its site).
func AccessBy(dim string) Slicer {
	col := map[string]string{"site": "site_id", "vendor": "vendor"}[dim]
	return func(ctx context.Context, conn driver.Conn, q Query) (Slices, error) {
		out := Slices{Dimension: dim,
			Columns: []string{"events", "denied", "denied_pct", "offline", "battery_low", "subjects"},
			Labels:  []string{"access events", "denied", "denied %", "offline reports", "battery low", "subjects"},
			Rows:    []SliceRow{}}
		if col == "" {
			return out, fmt.Errorf("slice by %q: want site or vendor", dim)
		}
		p := q.period()
		from, to := p.Start(), p.End()
		rows, err := accessBySQL.Query(ctx, conn, chstorage.Args{"dim": col, "from": secs(from), "to": secs(to),
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
		return out, rows.Err()
	}
}
