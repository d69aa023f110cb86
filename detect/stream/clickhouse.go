package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
)

var (
	oldestEventSQL  = chstorage.Query("stream/oldest_event")
	lastUsesSQL     = chstorage.Query("stream/last_uses")
	baselinesSQL    = chstorage.Query("stream/baselines")
	insertBaselines = chstorage.Query("stream/insert_baselines")
)

// ClickHouseUses reads last uses from access_events (every partition's
// events are there, unlike in one instance's engine). max() is unaffected by
// not-yet-merged duplicate rows, so no FINAL is needed.
type ClickHouseUses struct{ Conn driver.Conn }

var _ Uses = ClickHouseUses{}

// LastUses implements Uses.
func (u ClickHouseUses) LastUses(ctx context.Context, sinceMs int64) (map[string]int64, int64, error) {
	var oldest int64
	row := oldestEventSQL.QueryRow(ctx, u.Conn, nil)
	if err := row.Scan(&oldest); err != nil {
		return nil, 0, fmt.Errorf("oldest access event: %w", err)
	}
	rows, err := lastUsesSQL.Query(ctx, u.Conn, chstorage.Args{"since_s": sinceMs / 1000})
	if err != nil {
		return nil, 0, fmt.Errorf("last uses: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var ts int64
		if err := rows.Scan(&id, &ts); err != nil {
			return nil, 0, fmt.Errorf("scan last use: %w", err)
		}
		out[id] = ts
	}
	return out, oldest, rows.Err()
}

// ClickHouseBaselines keeps baselines in detect_baselines.
type ClickHouseBaselines struct{ Conn driver.Conn }

var _ Baselines = ClickHouseBaselines{}

// Load implements Baselines.
func (b ClickHouseBaselines) Load(ctx context.Context) ([]detect.Baseline, error) {
	rows, err := baselinesSQL.Query(ctx, b.Conn, nil)
	if err != nil {
		return nil, fmt.Errorf("load baselines: %w", err)
	}
	defer rows.Close()
	var out []detect.Baseline
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, fmt.Errorf("scan baseline: %w", err)
		}
		var bl detect.Baseline
		if err := json.Unmarshal([]byte(state), &bl); err != nil {
			continue // written by an incompatible version: relearn
		}
		bl.SubjectID = id
		out = append(out, bl)
	}
	return out, rows.Err()
}

// Save implements Baselines.
func (b ClickHouseBaselines) Save(ctx context.Context, bs []detect.Baseline) error {
	now := time.Now().UnixMilli()
	rows := make([][]any, 0, len(bs))
	for _, bl := range bs {
		state, err := json.Marshal(bl)
		if err != nil {
			return err
		}
		rows = append(rows, []any{bl.SubjectID, bl.Role, string(state), now})
	}
	for len(rows) > 0 {
		n := min(len(rows), 20000)
		if err := insertBaselines.Insert(ctx, b.Conn, rows[:n]...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

var (
	historyRecentSQL = chstorage.Query("stream/history_recent")
	historyGrantsSQL = chstorage.Query("stream/history_grants")
)

// ClickHouseHistory replays the access events stored in access_events, by
// the time they were stored (inserted_ms): the warm-up of detectors fed
// in-process, which judge every event before its batch is committed. Events
// stored but not yet committed when the previous process stopped are judged
// twice (replayed here, then delivered again).
type ClickHouseHistory struct {
	Conn driver.Conn
	Now  func() time.Time // default time.Now
}

var _ History = ClickHouseHistory{}

// Replay implements History.
func (h ClickHouseHistory) Replay(ctx context.Context, window, reach time.Duration, recent, older func(*event.Access)) error {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	windowFrom := now().Add(-window).UnixMilli()
	if reach > window {
		err := h.read(ctx, historyGrantsSQL, chstorage.Args{"since_ms": now().Add(-reach).UnixMilli(),
			"until_ms": windowFrom, "limit": MaxWarmUpEvents}, older)
		if err != nil {
			return err
		}
	}
	return h.read(ctx, historyRecentSQL, chstorage.Args{"since_ms": windowFrom, "limit": MaxWarmUpEvents}, recent)
}

func (h ClickHouseHistory) read(ctx context.Context, q *chstorage.Statement, args chstorage.Args, fn func(*event.Access)) error {
	rows, err := q.Query(ctx, h.Conn, args)
	if err != nil {
		return fmt.Errorf("warm-up from access_events: %w", err)
	}
	defer rows.Close()
	var e event.Access
	for rows.Next() {
		var id uuid.UUID
		var bg uint8
		e = event.Access{}
		if err := rows.Scan(&id, &e.TsMs, &e.ReceivedMs, &e.Vendor, &e.SiteID, &e.ZoneID, &e.DoorID,
			&e.LockID, &e.SubjectID, &e.CredentialID, &e.DeviceID, &e.Attested, &e.Action, &e.Outcome, &e.Method,
			&e.Reason, &e.VendorCode, &bg, &e.RawRef); err != nil {
			return fmt.Errorf("warm-up from access_events: %w", err)
		}
		e.EventID, e.BreakGlass = id.String(), bg != 0
		fn(&e)
	}
	return rows.Err()
}
