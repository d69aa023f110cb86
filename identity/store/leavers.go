package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// RecordLeaver stores a leaver and the revocation identity sync made for it.
func RecordLeaver(ctx context.Context, conn driver.Conn, l identity.Leaver) error {
	if err := insertLeaversSQL.Insert(ctx, conn, []any{l.SubjectID, l.ChangeMs, l.Reason, l.RevocationID,
		uint32(max(l.Credentials, 0)), time.UnixMilli(l.ChangeMs).UTC().Truncate(time.Second), l.RequestedMs}); err != nil {
		return fmt.Errorf("record leaver: %w", err)
	}
	return nil
}

// LeaverKPI computes the leaver latency over leavers whose identity change
// is in [from, to): per leaver, from the change to the last lock
// confirming the revocation of its credentials (the last entitlement
// record for a credential no lock held), as control's revocation latency
// counts a credential's. A leaver is confirmed once every credential of
// its revocation(s) is; quantiles are over the confirmed ones. Resyncs are
// not leaver events and are left out.
func LeaverKPI(ctx context.Context, conn driver.Conn, from, to time.Time) (identity.LeaverLatency, error) {
	since := from.UTC().Add(-24 * time.Hour).Truncate(time.Second) // revocations follow the change
	var n, confirmed uint64
	var qs []float64
	if err := leaverKPISQL.QueryRow(ctx, conn, chstorage.Args{"since": since, "from_ms": from.UnixMilli(),
		"to_ms": to.UnixMilli()}).Scan(&n, &confirmed, &qs); err != nil {
		return identity.LeaverLatency{}, fmt.Errorf("leaver kpi: %w", err)
	}
	out := identity.LeaverLatency{Count: int(n), Confirmed: int(confirmed)}
	if len(qs) == 3 && confirmed > 0 {
		out.P50, out.P95, out.P99 = qs[0]/1000, qs[1]/1000, qs[2]/1000
	}
	return out, nil
}
