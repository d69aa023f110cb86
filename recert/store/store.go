// Package store keeps recertification campaigns, their items and decisions
// in ClickHouse (internal/chstorage/queries/recert); every instance reads
// and writes them there.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/recert"
)

var (
	insertCampaignSQL  = chstorage.Query("recert/insert_campaign")
	insertItemsSQL     = chstorage.Query("recert/insert_items")
	insertDecisionsSQL = chstorage.Query("recert/insert_decisions")
	campaignsSQL       = chstorage.Query("recert/campaigns")
	itemsSQL           = chstorage.Query("recert/items")
)

// ErrNotFound is returned for an unknown campaign.
var ErrNotFound = errors.New("no such campaign")

// PutCampaign writes a campaign (or its new version).
func PutCampaign(ctx context.Context, conn driver.Conn, c recert.Campaign) error {
	if err := insertCampaignSQL.Insert(ctx, conn, []any{c.ID, c.SiteID, c.CreatedMs, c.DeadlineMs, c.CreatedBy, c.OnDeadline,
		c.ClosedMs, c.Version}); err != nil {
		return fmt.Errorf("store campaign: %w", err)
	}
	return nil
}

// PutItems writes a campaign's items.
func PutItems(ctx context.Context, conn driver.Conn, campaign string, items []recert.Item) error {
	if len(items) == 0 {
		return nil
	}
	rows := make([][]any, len(items))
	for i, it := range items {
		groups := it.DoorGroups
		if groups == nil {
			groups = []string{}
		}
		rows[i] = []any{campaign, it.CredentialID, it.SubjectID, it.Role, it.State, groups}
	}
	if err := insertItemsSQL.Insert(ctx, conn, rows...); err != nil {
		return fmt.Errorf("store campaign items: %w", err)
	}
	return nil
}

// Decision is one decision to store.
type Decision struct {
	CredentialID, Decision, Actor, Note string
	TsMs                                int64
	Version                             uint64
}

// PutDecisions writes decisions on a campaign's items.
func PutDecisions(ctx context.Context, conn driver.Conn, campaign string, ds ...Decision) error {
	if len(ds) == 0 {
		return nil
	}
	rows := make([][]any, len(ds))
	for i, d := range ds {
		rows[i] = []any{campaign, d.CredentialID, d.Decision, d.Actor, d.Note, d.TsMs, d.Version}
	}
	if err := insertDecisionsSQL.Insert(ctx, conn, rows...); err != nil {
		return fmt.Errorf("store decisions: %w", err)
	}
	return nil
}

// Filter selects campaigns.
type Filter struct {
	ID    string
	Sites []string // empty: every site
	DueMs int64    // > 0: only open campaigns whose deadline is at or before it
	Limit int
}

// Campaigns returns the campaigns matching f, newest first.
func Campaigns(ctx context.Context, conn driver.Conn, f Filter) ([]recert.Campaign, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := campaignsSQL.Query(ctx, conn, chstorage.Args{"campaign_id": f.ID, "sites": f.Sites, "due_ms": f.DueMs,
		"limit": uint64(f.Limit)})
	if err != nil {
		return nil, fmt.Errorf("campaigns: %w", err)
	}
	defer rows.Close()
	out := []recert.Campaign{}
	for rows.Next() {
		var c recert.Campaign
		if err := rows.Scan(&c.ID, &c.SiteID, &c.CreatedMs, &c.DeadlineMs, &c.CreatedBy, &c.OnDeadline, &c.ClosedMs, &c.Version); err != nil {
			return nil, fmt.Errorf("scan campaign: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Campaign returns one campaign and its items.
func Campaign(ctx context.Context, conn driver.Conn, id string) (recert.Campaign, []recert.Item, error) {
	cs, err := Campaigns(ctx, conn, Filter{ID: id, Limit: 1})
	if err != nil {
		return recert.Campaign{}, nil, err
	}
	if len(cs) == 0 {
		return recert.Campaign{}, nil, ErrNotFound
	}
	rows, err := itemsSQL.Query(ctx, conn, chstorage.Args{"campaign_id": id})
	if err != nil {
		return recert.Campaign{}, nil, fmt.Errorf("campaign items: %w", err)
	}
	defer rows.Close()
	items := []recert.Item{}
	for rows.Next() {
		var it recert.Item
		if err := rows.Scan(&it.CredentialID, &it.SubjectID, &it.Role, &it.State, &it.DoorGroups,
			&it.Decision, &it.DecidedBy, &it.Note, &it.DecidedMs); err != nil {
			return recert.Campaign{}, nil, fmt.Errorf("scan campaign item: %w", err)
		}
		items = append(items, it)
	}
	return cs[0], items, rows.Err()
}
