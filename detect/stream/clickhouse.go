package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/chstorage"
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
