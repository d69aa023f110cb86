// Package store is the ClickHouse-backed identity store: scim.Store for the
// SCIM service provider (and the HR feed, which writes through it), shared
// by every `keyfleet serve` instance and surviving restarts.
//
// # Why a single owner through Kafka
//
// SCIM needs atomic checks: a userName is created once, a replace is based
// on the version it read (ETags), even when two instances receive the
// requests. ClickHouse has no transactions and no compare-and-set: a
// ReplacingMergeTree "write then read back" cannot tell which of two
// concurrent writers of the same version came first (both may read back
// their own row before the other's lands, and a merge later keeps either).
// So writes are decided in one place, in one order: the instance that
// receives a write stages the new version in ClickHouse (identity_staged,
// keyed by a random token: personal data stays in ClickHouse) and publishes
// a write intent — token, operation, type, id, the version it is based on,
// a deadline; no personal data — on identity.writes, keyed by one constant
// key, so every intent lands in one partition. The member of the
// keyfleet-identity-owner consumer group that owns that partition is the
// owner: it keeps an index of every resource's version and unique keys
// (loaded from identity_resources), decides each intent in log order,
// copies applied versions from identity_staged into identity_resources,
// writes the decision (identity_decisions) and only then commits. The
// writer waits for its decision (woken in-process when it is the owner
// itself, polling ClickHouse otherwise). Kafka's group protocol is the
// lock: one owner at a time, a new one after a crash or rebalance, which
// reloads the index (the token on every version makes a re-delivered
// intent recognizable as applied). An intent decided after its deadline
// is expired, never applied, so a writer that timed out reports the truth.
//
// Reads (Get, List) go to ClickHouse directly: the newest version of each
// resource (argMax by version), never a cache, so every instance reads
// what the owner stored.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/identity/scim"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// ErrUndecided is returned when no owner decided a write before its
// deadline (the owner is down or far behind); the write will never apply.
var ErrUndecided = errors.New("identity write not decided in time (is an identity owner running?)")

// Options configure a Store.
type Options struct {
	Conn driver.Conn
	Bus  bus.Config
	// Subject returns the pseudonymous subject id of a user record (see
	// scim.SubjectOf). Required.
	Subject func(scim.Record) string
	// WriteTimeout bounds how long a write waits for the owner's decision
	// (default 10 s).
	WriteTimeout time.Duration
	// Prune is how often the owner drops old staging partitions and merges
	// away superseded versions (default 1 h).
	Prune      time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.Conn == nil {
		errs = append(errs, errors.New("identity store: Conn is required"))
	}
	if err := o.Bus.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("identity store: %w", err))
	}
	if o.Subject == nil {
		errs = append(errs, errors.New("identity store: Subject is required"))
	}
	if o.WriteTimeout < 0 || o.Prune < 0 {
		errs = append(errs, errors.New("identity store: WriteTimeout and Prune must not be negative"))
	}
	return errors.Join(errs...)
}

// Store implements scim.Store on ClickHouse, with writes decided by the
// owner (Run).
type Store struct {
	opts   Options
	log    *slog.Logger
	writer *kafka.Writer

	mu      sync.Mutex
	waiters map[string]chan decision

	idx  *index
	next map[int]int64 // partition → the offset after the last one decided

	writes   *prometheus.CounterVec
	duration prometheus.Histogram
	owned    prometheus.Gauge
}

var _ scim.Store = (*Store)(nil)

type decision struct{ outcome, detail string }

// New returns a store. Call Close when done.
func New(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Prune == 0 {
		opts.Prune = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{
		opts: opts, log: opts.Logger, writer: bus.NewWriter(opts.Bus, bus.TopicIdentityWrites),
		waiters: map[string]chan decision{},
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_identity_store_writes_total",
			Help: "Identity writes decided by the owner, by operation and outcome (applied, conflict, version, not_found, exists, expired, invalid).",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_identity_store_write_duration_seconds",
			Help:    "Time from staging an identity write to knowing the owner's decision.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 10),
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_identity_store_owner",
			Help: "1 while this instance decided the last identity write batch (it owns identity.writes).",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.writes, s.duration, s.owned} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register identity store metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Close closes the intent writer.
func (s *Store) Close() error { return s.writer.Close() }

// The identity store's statements (internal/chstorage/queries/identity).
var (
	getResourceSQL       = chstorage.Query("identity/get_resource")
	listResourcesSQL     = chstorage.Query("identity/list_resources")
	countUsersSQL        = chstorage.Query("identity/count_users")
	decisionSQL          = chstorage.Query("identity/decision")
	decisionsSQL         = chstorage.Query("identity/decisions")
	indexSQL             = chstorage.Query("identity/index")
	stagedSQL            = chstorage.Query("identity/staged")
	copyStagedSQL        = chstorage.Query("identity/copy_staged")
	insertStagedSQL      = chstorage.Query("identity/insert_staged")
	insertResourcesSQL   = chstorage.Query("identity/insert_resources")
	insertDecisionsSQL   = chstorage.Query("identity/insert_decisions")
	partitionsSQL        = chstorage.Query("identity/partitions")
	dropPartitionSQL     = chstorage.Query("identity/drop_partition")
	optimizeResourcesSQL = chstorage.Query("identity/optimize_resources")
	insertLeaversSQL     = chstorage.Query("identity/insert_leavers")
	leaverKPISQL         = chstorage.Query("identity/leaver_kpi")
)

// row is one version of a resource as stored.
type row struct {
	typ, id                       string
	version                       uint64
	deleted                       bool
	createdMs, modifiedMs         int64
	subject, userName, externalID string
	displayName                   string
	members                       []string
	doc                           string
}

func (r row) values() []any {
	del := uint8(0)
	if r.deleted {
		del = 1
	}
	members := r.members
	if members == nil {
		members = []string{}
	}
	return []any{r.typ, r.id, r.version, del, r.createdMs, r.modifiedMs, r.subject, r.userName, r.externalID,
		r.displayName, members, r.doc}
}

func (s *Store) rowOf(rec scim.Record) (row, error) {
	doc, err := json.Marshal(rec.Doc)
	if err != nil {
		return row{}, fmt.Errorf("encode record: %w", err)
	}
	keys := rec.Keys()
	first := func(k scim.Key) string {
		if v := keys[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	r := row{typ: rec.Type, id: rec.ID, version: uint64(rec.Version), createdMs: rec.Created.UnixMilli(),
		modifiedMs: rec.Modified.UnixMilli(), userName: first(scim.KeyUserName), externalID: first(scim.KeyExternalID),
		displayName: first(scim.KeyDisplayName), members: keys[scim.KeyMember], doc: string(doc)}
	if rec.Type == scim.TypeUser {
		r.subject = s.opts.Subject(rec)
	}
	return r, nil
}

// intent is a write intent on identity.writes: ids and versions, never
// attribute values.
type intent struct {
	Token      string `json:"token"`
	Op         string `json:"op"`
	Type       string `json:"type"`
	ID         string `json:"id"`
	Prev       int64  `json:"prev,omitempty"`
	DeadlineMs int64  `json:"deadline_ms"`
}

// ownerKey keys every intent, so all land in one partition, in one order.
var ownerKey = []byte("identity")

// grace is how long after its deadline a writer still looks for a decision
// (the owner never applies an intent past its deadline by its own clock).
const grace = 2 * time.Second

// Create implements scim.Store.
func (s *Store) Create(ctx context.Context, r scim.Record) error { return s.write(ctx, opCreate, r, 0) }

// Replace implements scim.Store.
func (s *Store) Replace(ctx context.Context, r scim.Record, prev int64) error {
	return s.write(ctx, opReplace, r, prev)
}

// Delete implements scim.Store.
func (s *Store) Delete(ctx context.Context, typ, id string, prev int64) error {
	return s.write(ctx, opDelete, scim.Record{Type: typ, ID: id}, prev)
}

func (s *Store) write(ctx context.Context, op string, r scim.Record, prev int64) error {
	start := s.opts.Now()
	token := uuid.NewString()
	deadline := start.Add(s.opts.WriteTimeout)
	if op != opDelete {
		rw, err := s.rowOf(r)
		if err != nil {
			return err
		}
		if err := insertStagedSQL.Insert(ctx, s.opts.Conn, append([]any{token, start.UTC().Truncate(time.Second)},
			rw.values()...)); err != nil {
			return fmt.Errorf("stage identity write: %w", err)
		}

	}
	ch := make(chan decision, 1)
	s.mu.Lock()
	s.waiters[token] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, token)
		s.mu.Unlock()
	}()
	v, err := json.Marshal(intent{Token: token, Op: op, Type: r.Type, ID: r.ID, Prev: prev, DeadlineMs: deadline.UnixMilli()})
	if err != nil {
		return err
	}
	if err := s.writer.WriteMessages(ctx, kafka.Message{Key: ownerKey, Value: v}); err != nil {
		return fmt.Errorf("publish identity write: %w", err)
	}
	d, err := s.await(ctx, token, ch, deadline.Add(grace))
	if err != nil {
		return err
	}
	s.duration.Observe(s.opts.Now().Sub(start).Seconds())
	switch d.outcome {
	case outcomeApplied:
		return nil
	case outcomeNotFound:
		return scim.ErrNotFound
	case outcomeVersion:
		return scim.ErrVersion
	case outcomeConflict:
		return fmt.Errorf("%w: %s", scim.ErrConflict, d.detail)
	case outcomeExists:
		return fmt.Errorf("%w: id", scim.ErrConflict)
	case outcomeExpired:
		return ErrUndecided
	}
	return fmt.Errorf("identity write %s: %s %s", op, d.outcome, d.detail)
}

// await waits for a write's decision: from this instance's owner loop, or
// from identity_decisions (another instance's).
func (s *Store) await(ctx context.Context, token string, ch <-chan decision, until time.Time) (decision, error) {
	wait := 10 * time.Millisecond
	for {
		t := time.NewTimer(wait)
		select {
		case d := <-ch:
			t.Stop()
			return d, nil
		case <-ctx.Done():
			t.Stop()
			return decision{}, ctx.Err()
		case <-t.C:
		}
		d, ok, err := s.readDecision(ctx, token)
		if err != nil {
			s.log.Warn("read identity decision", "err", err)
		} else if ok {
			return d, nil
		}
		if s.opts.Now().After(until) {
			return decision{}, ErrUndecided
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func (s *Store) readDecision(ctx context.Context, token string) (decision, bool, error) {
	rows, err := decisionSQL.Query(ctx, s.opts.Conn, chstorage.Args{"token": token})
	if err != nil {
		return decision{}, false, fmt.Errorf("read decision: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d decision
		if err := rows.Scan(&d.outcome, &d.detail); err != nil {
			return decision{}, false, fmt.Errorf("scan decision: %w", err)
		}
		return d, true, nil
	}
	return decision{}, false, rows.Err()
}

func scanRecords(rows driver.Rows, typ string) ([]scim.Record, error) {
	defer rows.Close()
	var out []scim.Record
	for rows.Next() {
		var id, doc string
		var v uint64
		var cms, mms int64
		if err := rows.Scan(&id, &v, &cms, &mms, &doc); err != nil {
			return nil, fmt.Errorf("scan identity resource: %w", err)
		}
		m, err := decodeDoc(doc)
		if err != nil {
			return nil, fmt.Errorf("identity resource %s: %w", id, err)
		}
		out = append(out, scim.Record{Type: typ, ID: id, Version: int64(v), Created: time.UnixMilli(cms).UTC(),
			Modified: time.UnixMilli(mms).UTC(), Doc: m})
	}
	return out, rows.Err()
}

// Get implements scim.Store.
func (s *Store) Get(ctx context.Context, typ, id string) (scim.Record, error) {
	rows, err := getResourceSQL.Query(ctx, s.opts.Conn, chstorage.Args{"type": typ, "id": id})
	if err != nil {
		return scim.Record{}, fmt.Errorf("read identity resource: %w", err)
	}
	recs, err := scanRecords(rows, typ)
	if err != nil {
		return scim.Record{}, err
	}
	if len(recs) == 0 {
		return scim.Record{}, scim.ErrNotFound
	}
	return recs[0], nil
}

// keyParams maps indexed keys to list_resources' parameters.
var keyParams = map[scim.Key]string{
	scim.KeyUserName:    "user_name",
	scim.KeyExternalID:  "external_id",
	scim.KeyDisplayName: "display_name",
	scim.KeyMember:      "member",
}

// List implements scim.Store, oldest first.
func (s *Store) List(ctx context.Context, q scim.Query) ([]scim.Record, error) {
	args := chstorage.Args{"type": q.Type}
	switch {
	case q.Key == scim.KeySubjectID:
		if q.Value == "" {
			return nil, nil
		}
		args["subjects"] = []string{q.Value}
	case q.Key != "":
		p, ok := keyParams[q.Key]
		if !ok {
			return nil, fmt.Errorf("identity store: unknown key %q", q.Key)
		}
		if q.Value == "" {
			return nil, nil // the store never indexes an empty value
		}
		args[p] = q.Value
	}
	rows, err := listResourcesSQL.Query(ctx, s.opts.Conn, args)
	if err != nil {
		return nil, fmt.Errorf("list identity resources: %w", err)
	}
	return scanRecords(rows, q.Type)
}

// UsersBySubject returns the users with these pseudonymous subject ids.
func (s *Store) UsersBySubject(ctx context.Context, subjects []string) ([]scim.Record, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	rows, err := listResourcesSQL.Query(ctx, s.opts.Conn, chstorage.Args{"type": scim.TypeUser, "subjects": subjects})
	if err != nil {
		return nil, fmt.Errorf("read users by subject: %w", err)
	}
	return scanRecords(rows, scim.TypeUser)
}

// CountUsers returns how many users the store holds (deleted ones not counted).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n uint64
	if err := countUsersSQL.QueryRow(ctx, s.opts.Conn, nil).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return int(n), nil
}

// decodeDoc decodes a stored document keeping numbers as json.Number, as
// the SCIM engine expects.
func decodeDoc(doc string) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode document: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
