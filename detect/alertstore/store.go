// Package alertstore keeps detector alerts in ClickHouse (the alerts table):
// a sink that moves the alerts topic into the table, queries, status changes
// and the /v1/alerts routes.
//
// The table is a ReplacingMergeTree(version): a status change or a detector
// update writes a new version of the whole row and every read uses FINAL, so
// reads never see two versions of one alert. Both writers read the current
// version first and carry over what they do not own: the sink keeps the
// status, the API keeps the detector's fields.
package alertstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Record is a stored alert: the detector's alert plus its triage state.
type Record struct {
	detect.Alert
	StatusNote string   `json:"status_note,omitempty"`
	StatusBy   string   `json:"status_by,omitempty"`
	StatusMs   int64    `json:"status_ms,omitempty"`
	UpdatedMs  int64    `json:"updated_ms"`
	Actions    []Action `json:"actions,omitempty"`

	version uint64
}

// Action is one responder action taken for an alert (alert_actions).
type Action struct {
	ActionID     string `json:"action_id"`
	Rule         string `json:"rule"`
	Action       string `json:"action"`
	Outcome      string `json:"outcome"`
	Detail       string `json:"detail,omitempty"`
	CredentialID string `json:"credential_id,omitempty"`
	Actor        string `json:"actor"`
	Reversal     string `json:"reversal,omitempty"`
	TsMs         int64  `json:"ts_ms"`
}

// ErrNotFound is returned for an unknown alert id.
var ErrNotFound = errors.New("alert not found")

// Store reads and writes the alerts table.
type Store struct {
	conn driver.Conn
	now  func() time.Time
	// mu serializes this process's read-modify-write cycles (sink and API),
	// so a detector update and a status change do not overwrite each other.
	mu sync.Mutex
}

// New returns a store on conn.
func New(conn driver.Conn) *Store { return &Store{conn: conn, now: time.Now} }

var (
	insertAlerts    = chstorage.Query("alertstore/insert_alerts")
	insertIndex     = chstorage.Query("alertstore/insert_index")
	indexSpanSQL    = chstorage.Query("alertstore/index_span")
	indexPageSQL    = chstorage.Query("alertstore/index_page")
	alertsByIDSQL   = chstorage.Query("alertstore/alerts_by_id")
	alertActionsSQL = chstorage.Query("alertstore/alert_actions")
	alertsSQL       = chstorage.Query("alertstore/alerts")
	insertOpen      = chstorage.Query("alertstore/insert_open")
	openStateSQL    = chstorage.Query("alertstore/open_state")
	openPageSQL     = chstorage.Query("alertstore/open_page")
)

// values is the record as a row of insertAlerts (scan reads the same
// columns, in the same order, from the selects).
func (r *Record) values() []any {
	a := &r.Alert
	ev := a.Evidence
	if ev == nil {
		ev = []string{}
	}
	return []any{
		a.AlertID, r.version, a.Detector, a.Severity, a.SubjectID, a.CredentialID, a.DoorID, a.SiteID,
		time.UnixMilli(a.TsMs).UTC(), a.TsMs, a.WindowStartMs, a.WindowEndMs, a.Observed, a.Threshold, a.Baseline, ev,
		a.Explanation, a.SuggestedAction, uint32(a.SuppressedCount), uint32(a.Revision), int32(a.RulesVersion),
		a.Status, r.StatusNote, r.StatusBy, r.StatusMs, a.SourceReceivedMs, a.DetectedMs, r.UpdatedMs,
	}
}

// indexValues is the record as a row of insertIndex.
func (r *Record) indexValues() []any {
	a := &r.Alert
	return []any{a.SiteID, a.AlertID, time.UnixMilli(a.TsMs).UTC(), a.TsMs, a.Detector, a.Severity, a.Status, r.version}
}

// insert writes alert versions: their index rows first, so an alert row
// never exists without its index row (a failure in between leaves an index
// row whose alert row is missing or older, which readers check against),
// then the changes to the open-alerts set, then the alert rows. A retry
// after a failure in between finds the open set already changed and adds
// nothing (syncOpen writes differences). fresh says that no write of these
// alerts ever began (the index holds none of them), so the open set holds
// nothing for them either and is not read.
func (s *Store) insert(ctx context.Context, recs []Record, fresh bool) error {
	idx := make([][]any, len(recs))
	rows := make([][]any, len(recs))
	for i := range recs {
		idx[i], rows[i] = recs[i].indexValues(), recs[i].values()
	}
	if err := insertIndex.Insert(ctx, s.conn, idx...); err != nil {
		return err
	}
	if err := s.syncOpen(ctx, recs, fresh); err != nil {
		return err
	}
	return insertAlerts.Insert(ctx, s.conn, rows...)
}

// openRow is an alert's row in alerts_open.
type openRow struct {
	site, id           string
	ts                 time.Time
	tsMs               int64
	detector, severity string
	version            uint64
}

func (o openRow) values(sign int8) []any {
	return []any{o.site, o.id, o.ts, o.tsMs, o.detector, o.severity, o.version, sign}
}

// openState is what alerts_open holds for one row key: the sum of its signs
// and its newest opening row.
type openState struct {
	n   int64
	row openRow
}

// syncOpen brings alerts_open to the records' statuses: it reads what the
// table holds for them and writes the difference (an open record: one row
// with its current detector, severity and time; any other: none), so the
// write is idempotent and mends a sum that a repeated back-fill or an
// interrupted write left wrong. fresh: the table holds nothing for the
// records (no write of theirs began), so there is nothing to read.
func (s *Store) syncOpen(ctx context.Context, recs []Record, fresh bool) error {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(recs))
	var sites []string
	for i := range recs {
		ids = append(ids, recs[i].AlertID)
		if !slices.Contains(sites, recs[i].SiteID) {
			sites = append(sites, recs[i].SiteID)
		}
	}
	have := map[[2]string]openState{}
	if fresh {
		ids = nil
	}
	for chunk := range slices.Chunk(ids, 1000) { // keeps the query text small
		rows, err := openStateSQL.Query(ctx, s.conn, chstorage.Args{"ids": chunk, "sites": sites})
		if err != nil {
			return fmt.Errorf("query open alerts: %w", err)
		}
		for rows.Next() {
			var st openState
			r := &st.row
			if err := rows.Scan(&r.site, &r.id, &st.n, &r.ts, &r.tsMs, &r.detector, &r.severity, &r.version); err != nil {
				rows.Close()
				return fmt.Errorf("scan open alerts: %w", err)
			}
			have[[2]string{r.site, r.id}] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read open alerts: %w", err)
		}
	}
	var out [][]any
	want := map[[2]string]bool{}
	for i := range recs {
		r := &recs[i]
		if r.Status != detect.StatusOpen {
			continue
		}
		key := [2]string{r.SiteID, r.AlertID}
		want[key] = true
		row := openRow{site: r.SiteID, id: r.AlertID, ts: time.UnixMilli(r.TsMs).UTC(), tsMs: r.TsMs,
			detector: r.Detector, severity: r.Severity, version: r.version}
		cur, ok := have[key]
		if ok && cur.n == 1 && cur.row.tsMs == row.tsMs && cur.row.detector == row.detector && cur.row.severity == row.severity {
			continue // already there as it is
		}
		if ok {
			for range max(cur.n, 0) {
				out = append(out, cur.row.values(-1))
			}
			for range max(-cur.n, 0) {
				out = append(out, cur.row.values(1))
			}
		}
		out = append(out, row.values(1))
	}
	for key, cur := range have {
		if want[key] {
			continue
		}
		for range max(cur.n, 0) {
			out = append(out, cur.row.values(-1))
		}
		for range max(-cur.n, 0) {
			out = append(out, cur.row.values(1))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return insertOpen.Insert(ctx, s.conn, out...)
}

func scan(rows driver.Rows) ([]Record, error) {
	var out []Record
	for rows.Next() {
		var r Record
		a := &r.Alert
		var ts time.Time
		var supp, rev uint32
		var rv int32
		if err := rows.Scan(&a.AlertID, &r.version, &a.Detector, &a.Severity, &a.SubjectID, &a.CredentialID, &a.DoorID, &a.SiteID,
			&ts, &a.TsMs, &a.WindowStartMs, &a.WindowEndMs, &a.Observed, &a.Threshold, &a.Baseline, &a.Evidence,
			&a.Explanation, &a.SuggestedAction, &supp, &rev, &rv,
			&a.Status, &r.StatusNote, &r.StatusBy, &r.StatusMs, &a.SourceReceivedMs, &a.DetectedMs, &r.UpdatedMs); err != nil {
			return nil, fmt.Errorf("scan alert: %w", err)
		}
		a.SuppressedCount, a.Revision, a.RulesVersion = int(supp), int(rev), int(rv)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// newest keeps each alert's highest version (alerts_by_id reads without
// FINAL, which 18.16 runs in one stream: a page's alerts have a few versions
// each, merged here instead).
func newest(recs []Record) []Record {
	at := make(map[string]int, len(recs))
	out := recs[:0]
	for _, r := range recs {
		i, ok := at[r.AlertID]
		switch {
		case !ok:
			at[r.AlertID] = len(out)
			out = append(out, r)
		case r.version > out[i].version:
			out[i] = r
		}
	}
	return out
}

// nextVersion returns a version above prev: the current time in
// microseconds, or prev+1 if the clock is behind it.
func (s *Store) nextVersion(prev uint64) uint64 {
	v := uint64(s.now().UnixMicro())
	if v <= prev {
		v = prev + 1
	}
	return v
}

// byIDs returns the current versions of the given alerts. sites, when
// known, are the alerts' sites: the index then finds them by its key. The
// full rows are read within the event-time span the index gives, which the
// alerts table's key prunes to. indexed is false when the index holds no row
// of any of them: every write puts an alert's index row before anything else
// (and the migrations back-filled the index from alerts), so none of them was
// ever written, not even in part, and alerts is not read at all (without a
// span that read would scan every stored alert).
func (s *Store) byIDs(ctx context.Context, ids, sites []string) (recs map[string]Record, indexed bool, err error) {
	out := map[string]Record{}
	if len(ids) == 0 {
		return out, false, nil
	}
	var from, to time.Time
	var n uint64
	args := chstorage.Args{"ids": ids}
	if len(sites) > 0 {
		args["sites"] = sites
	}
	if err := indexSpanSQL.QueryRow(ctx, s.conn, args).Scan(&from, &to, &n); err != nil {
		return nil, false, fmt.Errorf("query alert index: %w", err)
	}
	if n == 0 {
		return out, false, nil
	}
	args = chstorage.Args{"ids": ids}
	if from.Unix() > 0 {
		args["from"], args["to"] = from, to
	}
	rows, err := alertsByIDSQL.Query(ctx, s.conn, args)
	if err != nil {
		return nil, false, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	list, err := scan(rows)
	if err != nil {
		return nil, false, err
	}
	for _, r := range newest(list) {
		out[r.AlertID] = r
	}
	return out, true, nil
}

// Known reports which of the given alerts are stored (detect/stream's
// warm-up uses it to produce only the alerts the store has not seen).
func (s *Store) Known(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for chunk := range slices.Chunk(ids, 1000) { // keeps the query text small
		recs, _, err := s.byIDs(ctx, chunk, nil)
		if err != nil {
			return nil, err
		}
		for id := range recs {
			out[id] = true
		}
	}
	return out, nil
}

// Put stores alerts as the detector emitted them (the sink). An alert
// already stored keeps its status, its first ts_ms (batch checks re-find a
// condition at later times) and any newer revision; re-delivered or older
// revisions change nothing.
func (s *Store) Put(ctx context.Context, alerts []detect.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	latest := map[string]detect.Alert{}
	var ids, sites []string
	siteSeen := map[string]bool{}
	for _, a := range alerts {
		prev, ok := latest[a.AlertID]
		if !ok {
			ids = append(ids, a.AlertID)
		}
		if !siteSeen[a.SiteID] {
			siteSeen[a.SiteID] = true
			sites = append(sites, a.SiteID)
		}
		if !ok || a.Revision >= prev.Revision {
			latest[a.AlertID] = a
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	existing, indexed, err := s.byIDs(ctx, ids, sites)
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	var recs []Record
	for _, id := range ids {
		a := latest[id]
		r := Record{Alert: a, UpdatedMs: now}
		if cur, ok := existing[id]; ok {
			if cur.Revision > a.Revision || (cur.Revision == a.Revision && cur.SuppressedCount >= a.SuppressedCount) {
				continue // nothing newer
			}
			r.Alert.TsMs = cur.TsMs
			r.Alert.Status, r.StatusNote, r.StatusBy, r.StatusMs = cur.Status, cur.StatusNote, cur.StatusBy, cur.StatusMs
			r.version = s.nextVersion(cur.version)
		} else {
			r.version = s.nextVersion(0)
		}
		if r.Alert.Status == "" {
			r.Alert.Status = detect.StatusOpen
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}
	return s.insert(ctx, recs, !indexed)
}

// Get returns one alert with its responder actions.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	m, _, err := s.byIDs(ctx, []string{id}, nil)
	if err != nil {
		return Record{}, err
	}
	r, ok := m[id]
	if !ok {
		return Record{}, ErrNotFound
	}
	r.Actions, err = s.actions(ctx, id)
	return r, err
}

func (s *Store) actions(ctx context.Context, alertID string) ([]Action, error) {
	rows, err := alertActionsSQL.Query(ctx, s.conn, chstorage.Args{"alert_id": alertID})
	if err != nil {
		return nil, fmt.Errorf("query alert actions: %w", err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		if err := rows.Scan(&a.ActionID, &a.Rule, &a.Action, &a.Outcome, &a.Detail, &a.CredentialID, &a.Actor, &a.Reversal, &a.TsMs); err != nil {
			return nil, fmt.Errorf("scan alert action: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Filter selects alerts. Empty fields do not filter.
type Filter struct {
	Status, Detector, Severity, Subject, Credential, Door, Site string
	// Sites limits the alerts to these sites (a site-scoped caller's).
	Sites        []string
	FromMs, ToMs int64 // ts_ms in [FromMs, ToMs)
	Limit        int
}

// List returns alerts matching f, newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Record, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args := chstorage.Args{"status": f.Status, "detector": f.Detector, "severity": f.Severity,
		"subject_id": f.Subject, "credential_id": f.Credential, "door_id": f.Door, "site_id": f.Site, "sites": f.Sites, "limit": limit}
	if f.FromMs > 0 {
		args["from_ms"], args["from_s"] = f.FromMs, f.FromMs/1000
	}
	if f.ToMs > 0 {
		args["to_ms"], args["to_s"] = f.ToMs, f.ToMs/1000
	}
	if f.Subject == "" && f.Credential == "" && f.Door == "" {
		return s.listIndexed(ctx, f, args)
	}
	rows, err := alertsSQL.Query(ctx, s.conn, args)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	return scan(rows)
}

// listIndexed lists alerts filtered by what the index holds (status,
// detector, severity, site or a scoped caller's sites, time): the page's ids
// from the index (open alerts: from alerts_open, bounded by the open set), then their
// full rows from alerts within the page's event-time span. A row whose
// current version no longer matches (a status changed between the two
// reads, or an index row whose alert row was not written) is left out.
func (s *Store) listIndexed(ctx context.Context, f Filter, args chstorage.Args) ([]Record, error) {
	args = maps.Clone(args)
	delete(args, "subject_id")
	delete(args, "credential_id")
	delete(args, "door_id")
	var ids []string
	var from, to time.Time
	var err error
	page, windows := indexPageSQL, listWindows
	if f.Status == detect.StatusOpen {
		// Open alerts: from the open set, not the index of every alert. A
		// site's open set is read whole by its key (windows would only add
		// queries when it is small); the fleet's newest week first.
		delete(args, "status")
		page, windows = openPageSQL, openWindows
		if f.Site != "" || len(f.Sites) > 0 {
			windows = nil
		}
	}
	if f.FromMs > 0 || len(windows) == 0 {
		ids, from, to, err = s.page(ctx, page, args)
	} else {
		// No lower time bound: the newest windows first (both indexes'
		// partitions are months), widened until the page is full; a full
		// page of a window is the page of all time, newest first (an
		// alert's ts never changes, so all its rows are in or out).
		limit, _ := args["limit"].(int)
		for _, w := range windows {
			wargs := args
			if w > 0 {
				wargs = maps.Clone(args)
				fromMs := s.now().Add(-w).UnixMilli()
				wargs["from_ms"], wargs["from_s"] = fromMs, fromMs/1000
			}
			ids, from, to, err = s.page(ctx, page, wargs)
			if err != nil || len(ids) >= limit {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := alertsByIDSQL.Query(ctx, s.conn, chstorage.Args{"ids": ids, "from": from, "to": to})
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	recs, err := scan(rows)
	if err != nil {
		return nil, err
	}
	recs = newest(recs)
	out := recs[:0]
	for _, r := range recs {
		if (f.Status == "" || r.Status == f.Status) && (f.Detector == "" || r.Detector == f.Detector) &&
			(f.Severity == "" || r.Severity == f.Severity) && (f.Site == "" || r.SiteID == f.Site) &&
			(len(f.Sites) == 0 || slices.Contains(f.Sites, r.SiteID)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		if a.TsMs != b.TsMs {
			return cmp.Compare(b.TsMs, a.TsMs)
		}
		return strings.Compare(a.AlertID, b.AlertID)
	})
	return out, nil
}

// listWindows are the time windows (back from now) a list without a lower
// time bound reads in turn until its page is full; 0 is all time.
var listWindows = []time.Duration{7 * 24 * time.Hour, 35 * 24 * time.Hour, 400 * 24 * time.Hour, 0}

// openWindows are the windows of a fleet-wide open-alerts list (the open
// set is small: one week, then all of it).
var openWindows = []time.Duration{7 * 24 * time.Hour, 0}

// page reads one page of ids (and their event-time span) from an index.
func (s *Store) page(ctx context.Context, page *chstorage.Statement, args chstorage.Args) (ids []string, from, to time.Time, err error) {
	rows, err := page.Query(ctx, s.conn, args)
	if err != nil {
		return nil, from, to, fmt.Errorf("query alert index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var ts time.Time
		if err := rows.Scan(&id, &ts); err != nil {
			return nil, from, to, fmt.Errorf("scan alert index: %w", err)
		}
		if len(ids) == 0 || ts.Before(from) {
			from = ts
		}
		if len(ids) == 0 || ts.After(to) {
			to = ts
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, from, to, fmt.Errorf("read alert index: %w", err)
	}
	return ids, from, to, nil
}

// SetStatus writes a new version of an alert with a changed status. It
// returns the new record and the status it had before.
func (s *Store) SetStatus(ctx context.Context, id, status, note, by string) (Record, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, _, err := s.byIDs(ctx, []string{id}, nil)
	if err != nil {
		return Record{}, "", err
	}
	r, ok := m[id]
	if !ok {
		return Record{}, "", ErrNotFound
	}
	prev := r.Status
	now := s.now().UnixMilli()
	r.Status, r.StatusNote, r.StatusBy, r.StatusMs, r.UpdatedMs = status, note, by, now, now
	r.version = s.nextVersion(r.version)
	if err := s.insert(ctx, []Record{r}, false); err != nil {
		return Record{}, "", err
	}
	return r, prev, nil
}
