package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	insertEntries = chstorage.Query("audit/insert_entries")
	headSQL       = chstorage.Query("audit/head")
	headRowsSQL   = chstorage.Query("audit/head_rows")
	hashAtSQL     = chstorage.Query("audit/hash_at")
	allEntriesSQL = chstorage.Query("audit/all_entries")
	entriesSQL    = chstorage.Query("audit/entries")
)

// Table is the ClickHouse table of the audit log (migration 0022).
var Table = insertEntries.Table()

// Columns are audit_log's columns in insert order.
var Columns = insertEntries.Columns()

// ActionChainStart is the first entry of every chain. Its details anchor the
// heads of the chains that existed when it started ("anchor.<chain>" =
// "<seq>:<hash>"), so a chain removed or cut short later is detected.
const ActionChainStart = "audit.chain_start"

// Options configure a Store.
type Options struct {
	// Chain names this writer's chain. Two processes must never share one;
	// the default is host-pid-start time.
	Chain      string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Keys key every entry (HMAC-SHA256, the key id recorded in the hash)
	// and sign checkpoints. Without keys entries are hashed without a
	// secret (unkeyed: anyone who can write to ClickHouse can forge them),
	// as before keyed audit existed.
	Keys *Keyring
	// Anchors keep a signed checkpoint of this chain's head after every
	// commit, and are consulted before the chain is continued after a
	// restart and by Verify.
	Anchors []Anchor
	// ActorName returns the name of an actor id (a token's name) for
	// entries whose ActorName is empty; names are not unique, ids are.
	ActorName func(actor string) (string, bool)
}

// Store is the hash-chained, append-only audit log in ClickHouse. Each Store
// appends to its own chain, serially; any number of Stores (processes) may
// write at once, each on its own chain.
type Store struct {
	conn    driver.Conn
	opts    Options
	appends *prometheus.CounterVec

	qmu   sync.Mutex
	queue []*pendingAppend

	mu     sync.Mutex // held while committing; guards the head
	loaded bool       // head is known
	seq    uint64
	hash   string
	// refused records why a stored head was not continued (the chain
	// forked); the new chain's start entry says so.
	refused map[string]string
	// anchored is the seq of the last checkpoint the anchors accepted.
	anchored uint64

	checkpoints *prometheus.CounterVec
}

// NewStore returns a store writing chain opts.Chain.
func NewStore(conn driver.Conn, opts Options) (*Store, error) {
	if conn == nil {
		return nil, errors.New("audit: a ClickHouse connection is required")
	}
	if opts.Chain == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "keyfleet"
		}
		opts.Chain = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{conn: conn, opts: opts, appends: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyfleet_audit_appends_total",
		Help: "Audit log appends, by outcome (ok, error).",
	}, []string{"outcome"}), checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyfleet_audit_checkpoints_total",
		Help: "Checkpoints of the audit chain head written to the anchors, by outcome (ok, error).",
	}, []string{"outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.appends, s.checkpoints)
	}
	return s, nil
}

// Chain returns the name of the chain this store appends to.
func (s *Store) Chain() string { return s.opts.Chain }

// Row is one stored audit entry.
type Row struct {
	Chain    string            `json:"chain"`
	Seq      uint64            `json:"seq"`
	TsMs     int64             `json:"ts_ms"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
	// KeyID is the key that keyed the entry ("" for an unkeyed entry).
	KeyID string `json:"key_id,omitempty"`
	// ActorName is the actor's name when the entry recorded one.
	ActorName string `json:"actor_name,omitempty"`

	details string // as stored
}

// actorNameKey is the details key under which an entry keeps ActorName.
const actorNameKey = "actor_name"

// Append adds one entry to the chain and returns once ClickHouse has it. An
// error means the entry is not (known to be) stored: the caller must not
// carry out the action it describes. Concurrent appends are committed
// together (one insert of consecutive chained entries), so a burst of admin
// actions costs one ClickHouse round trip per burst, not per action.
func (s *Store) Append(ctx context.Context, e Entry) error {
	return s.AppendAll(ctx, []Entry{e})
}

// AppendAll adds entries to the chain in order, in one insert with whatever
// other appends are waiting, and returns once ClickHouse has them: a batch
// of automated actions (the responders') costs one round trip. An error
// means none of them is (known to be) stored.
func (s *Store) AppendAll(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	ps := make([]*pendingAppend, len(entries))
	for i, e := range entries {
		if e.Action == "" {
			return errors.New("audit append: an audit entry needs an action")
		}
		if e.TsMs == 0 {
			e.TsMs = s.opts.Now().UnixMilli()
		}
		if e.ActorName == "" && s.opts.ActorName != nil {
			e.ActorName, _ = s.opts.ActorName(e.Actor)
		}
		if e.ActorName != "" {
			d := make(map[string]string, len(e.Details)+1)
			for k, v := range e.Details {
				d[k] = v
			}
			d[actorNameKey] = e.ActorName
			e.Details = d
		}
		ps[i] = &pendingAppend{entry: e, done: make(chan error, 1)}
	}
	s.qmu.Lock()
	s.queue = append(s.queue, ps...)
	s.qmu.Unlock()

	s.mu.Lock() // the holder commits everything queued so far
	select {
	case err := <-ps[len(ps)-1].done: // a previous holder committed them (queued together, committed together)
		s.mu.Unlock()
		return err
	default:
	}
	s.qmu.Lock()
	group := s.queue
	s.queue = nil
	s.qmu.Unlock()
	// One caller's cancellation must not fail the others' entries.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	err := s.commit(cctx, group)
	cancel()
	if err != nil {
		s.appends.WithLabelValues("error").Add(float64(len(group)))
		// The insert may have landed anyway: read the head again next time.
		s.loaded = false
		err = fmt.Errorf("audit append: %w", err)
	} else {
		s.appends.WithLabelValues("ok").Add(float64(len(group)))
	}
	for _, g := range group {
		g.done <- err
	}
	s.mu.Unlock()
	return <-ps[len(ps)-1].done
}

type pendingAppend struct {
	entry Entry
	done  chan error
}

func (s *Store) commit(ctx context.Context, group []*pendingAppend) error {
	if !s.loaded {
		if err := s.loadHead(ctx); err != nil {
			return err
		}
	}
	if s.seq == 0 {
		if err := s.start(ctx); err != nil {
			return err
		}
	}
	entries := make([]Entry, len(group))
	for i, g := range group {
		entries[i] = g.entry
	}
	if err := s.insert(ctx, entries...); err != nil {
		return err
	}
	s.anchor(ctx)
	return nil
}

// anchor writes a signed checkpoint of the head to every anchor. A failure
// is logged and counted, not returned: the entries are stored; Run writes
// the checkpoint later.
func (s *Store) anchor(ctx context.Context) {
	if s.opts.Keys == nil || len(s.opts.Anchors) == 0 || s.anchored == s.seq {
		return
	}
	cp := s.opts.Keys.Sign(Checkpoint{Chain: s.opts.Chain, Seq: s.seq, Hash: s.hash, TsMs: s.opts.Now().UnixMilli()})
	for _, a := range s.opts.Anchors {
		if err := a.Put(ctx, cp); err != nil {
			s.checkpoints.WithLabelValues("error").Inc()
			s.opts.Logger.Warn("audit checkpoint not written; retrying later", "chain", cp.Chain, "seq", cp.Seq, "err", err)
			return
		}
	}
	s.checkpoints.WithLabelValues("ok").Inc()
	s.anchored = s.seq
}

// Run writes checkpoints that could not be written at commit time, every
// interval, until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.mu.Lock()
		if s.loaded {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			s.anchor(cctx)
			cancel()
		}
		s.mu.Unlock()
	}
}

// start writes the chain's first entry, anchoring the other chains' heads
// that verify (keyed with a key this store holds and consistent with their
// checkpoints); the others are named as unverified, never anchored.
func (s *Store) start(ctx context.Context) error {
	if s.opts.Keys == nil {
		s.opts.Logger.Warn("audit chain without a key: its entries are hashed without a secret (unkeyed)", "chain", s.opts.Chain)
	}
	heads, err := s.headRows(ctx)
	if err != nil {
		return err
	}
	cps := s.anchorCheckpoints(ctx)
	details := map[string]string{}
	for chain, h := range heads {
		if chain == s.opts.Chain {
			continue
		}
		if why := s.doubt(ctx, &h, cps); why != "" {
			details["unverified."+chain] = strconv.FormatUint(h.Seq, 10) + ":" + why
			continue
		}
		details["anchor."+chain] = strconv.FormatUint(h.Seq, 10) + ":" + h.Hash
	}
	for chain, why := range s.refused {
		details["refused."+chain] = why
	}
	return s.insert(ctx, Entry{Actor: "system", Action: ActionChainStart, Target: s.opts.Chain,
		Details: details, TsMs: s.opts.Now().UnixMilli()})
}

// anchorCheckpoints reads the anchors' checkpoints (nil when there are
// none or they cannot be read: then nothing can be checked against them).
func (s *Store) anchorCheckpoints(ctx context.Context) map[string]Checkpoint {
	var all []Checkpoint
	for _, a := range s.opts.Anchors {
		cps, err := a.Checkpoints(ctx)
		if err != nil {
			s.opts.Logger.Warn("audit checkpoints unavailable", "err", err)
			continue
		}
		for _, c := range cps {
			if s.opts.Keys != nil && s.opts.Keys.VerifyCheckpoint(c) == nil {
				all = append(all, c)
			}
		}
	}
	return latest(all)
}

// doubt returns why a chain's stored head must not be trusted ("" when it
// may be): it is unkeyed or its MAC fails while this store has keys, or it
// is behind or beside the chain's latest checkpoint.
func (s *Store) doubt(ctx context.Context, head *Row, cps map[string]Checkpoint) string {
	if s.opts.Keys != nil {
		switch st := head.check(s.opts.Keys); st {
		case statusOK:
		case statusUnkeyedOK:
			return "the head is unkeyed"
		default:
			return "the head does not match its MAC (" + string(st) + ")"
		}
	}
	cp, ok := cps[head.Chain]
	if !ok {
		return ""
	}
	if head.Seq < cp.Seq {
		return fmt.Sprintf("the chain ends at seq %d but a checkpoint vouches for seq %d", head.Seq, cp.Seq)
	}
	var h string
	if err := hashAtSQL.QueryRow(ctx, s.conn, chstorage.Args{"chain": head.Chain, "seq": cp.Seq}).Scan(&h); err != nil || h != cp.Hash {
		return fmt.Sprintf("entry %d does not have the checkpointed hash", cp.Seq)
	}
	return ""
}

// insert chains entries after the head and stores them in one insert; the
// head moves only once ClickHouse has them.
func (s *Store) insert(ctx context.Context, entries ...Entry) error {
	seq, prev := s.seq, s.hash
	rows := make([][]any, 0, len(entries))
	for _, e := range entries {
		details, err := encodeDetails(e.Details)
		if err != nil {
			return err
		}
		r := Row{Chain: s.opts.Chain, Seq: seq + 1, TsMs: e.TsMs, Actor: e.Actor, Action: e.Action,
			Target: e.Target, PrevHash: prev, details: details}
		if s.opts.Keys != nil {
			r.Hash = r.keyedHash(s.opts.Keys, s.opts.Keys.Current())
		} else {
			r.Hash = r.computeHash()
		}
		rows = append(rows, []any{r.Chain, r.Seq, time.UnixMilli(r.TsMs).UTC(), r.TsMs, r.Actor, r.Action, r.Target,
			r.details, r.PrevHash, r.Hash})
		seq, prev = r.Seq, r.Hash
	}
	if err := insertEntries.Insert(ctx, s.conn, rows...); err != nil {
		return err
	}
	s.seq, s.hash = seq, prev
	return nil
}

func encodeDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "", nil
	}
	b, err := json.Marshal(d) // keys sorted: a canonical form
	if err != nil {
		return "", fmt.Errorf("encode details: %w", err)
	}
	return string(b), nil
}

func scanRow(rows driver.Rows) (Row, error) {
	var r Row
	err := rows.Scan(&r.Chain, &r.Seq, &r.TsMs, &r.Actor, &r.Action, &r.Target, &r.details, &r.PrevHash, &r.Hash)
	r.KeyID, _ = splitHash(r.Hash)
	return r, err
}

// loadHead reads this chain's head. A head that must not be trusted (see
// doubt) is not continued: the store moves to a new chain, whose start
// entry records the refusal, so a forged or cut head never becomes the
// predecessor of genuine entries nor an anchor.
func (s *Store) loadHead(ctx context.Context) error {
	rows, err := headSQL.Query(ctx, s.conn, chstorage.Args{"chain": s.opts.Chain})
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	var head *Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("scan audit head: %w", err)
		}
		head = &r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	s.seq, s.hash = 0, ""
	if head != nil {
		if why := s.doubt(ctx, head, s.anchorCheckpoints(ctx)); why != "" {
			old := s.opts.Chain
			s.opts.Chain = old + ".r" + strconv.FormatInt(s.opts.Now().UnixMilli(), 36)
			if s.refused == nil {
				s.refused = map[string]string{}
			}
			s.refused[old] = strconv.FormatUint(head.Seq, 10) + ":" + why
			s.opts.Logger.Error("audit chain head not trusted: continuing on a new chain", "chain", old,
				"seq", head.Seq, "reason", why, "new_chain", s.opts.Chain)
		} else {
			s.seq, s.hash = head.Seq, head.Hash
		}
	}
	s.loaded = true
	s.anchored = 0
	return nil
}

// headRows returns the last entry of every chain.
func (s *Store) headRows(ctx context.Context) (map[string]Row, error) {
	rows, err := headRowsSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return nil, fmt.Errorf("read audit chains: %w", err)
	}
	defer rows.Close()
	out := map[string]Row{}
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("scan audit chains: %w", err)
		}
		out[r.Chain] = r
	}
	return out, rows.Err()
}

// keyedHash is the entry's hash under key id: HMAC-SHA256 over the same
// fields as computeHash plus the key id, written hmac-sha256:<id>:<hex>.
func (r *Row) keyedHash(keys *Keyring, id string) string {
	mac, ok := keys.mac(id, "keyfleet-audit-v2", id, r.Chain, strconv.FormatUint(r.Seq, 10),
		strconv.FormatInt(r.TsMs, 10), r.Actor, r.Action, r.Target, r.details, r.PrevHash)
	if !ok {
		return ""
	}
	return keyedPrefix + id + ":" + mac
}

// Entry states of check.
type status string

const (
	statusOK         status = "ok"          // keyed, the MAC matches
	statusUnkeyedOK  status = "unkeyed"     // unkeyed, the SHA-256 matches
	statusBad        status = "mismatch"    // the hash or MAC does not match the content
	statusUnknownKey status = "unknown key" // keyed with a key the verifier does not hold
	statusUnchecked  status = "unchecked"   // keyed, and the verifier holds no keys
	statusMalformed  status = "malformed"   // the hash is neither form
)

// check verifies the entry's content against its hash.
func (r *Row) check(keys *Keyring) status {
	id, ok := splitHash(r.Hash)
	switch {
	case !ok:
		return statusMalformed
	case id == "":
		if r.computeHash() == r.Hash {
			return statusUnkeyedOK
		}
		return statusBad
	case keys == nil:
		return statusUnchecked
	}
	want := r.keyedHash(keys, id)
	switch {
	case want == "":
		return statusUnknownKey
	case hmac.Equal([]byte(want), []byte(r.Hash)):
		return statusOK
	}
	return statusBad
}

// computeHash is SHA-256 over a length-prefixed encoding of every stored
// field but the hash itself and the derived DateTime.
func (r *Row) computeHash() string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("keyfleet-audit-v1")
	field(r.Chain)
	field(strconv.FormatUint(r.Seq, 10))
	field(strconv.FormatInt(r.TsMs, 10))
	field(r.Actor)
	field(r.Action)
	field(r.Target)
	field(r.details)
	field(r.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// Pseudonym returns the keyed hash (HMAC-SHA256, hex, 128 bits) under which
// personal data or a secret may appear in an audit entry.
func Pseudonym(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// same reports whether two rows are identical as stored.
func (r *Row) same(o *Row) bool {
	return r.Chain == o.Chain && r.Seq == o.Seq && r.TsMs == o.TsMs && r.Actor == o.Actor &&
		r.Action == o.Action && r.Target == o.Target && r.details == o.details &&
		r.PrevHash == o.PrevHash && r.Hash == o.Hash
}

func decodeDetails(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var d map[string]string
	err := json.Unmarshal([]byte(s), &d)
	return d, err
}

// Entries returns the stored entries (newest first), at most limit, with
// optional filters by action prefix and target.
func (s *Store) Entries(ctx context.Context, actionPrefix, target string, limit int) ([]Row, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	rows, err := entriesSQL.Query(ctx, s.conn, chstorage.Args{"action_prefix": actionPrefix, "target": target, "limit": limit})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		r.Details, _ = decodeDetails(r.details)
		if name, ok := r.Details[actorNameKey]; ok {
			r.ActorName = name
			delete(r.Details, actorNameKey)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

var _ Appender = (*Store)(nil)
