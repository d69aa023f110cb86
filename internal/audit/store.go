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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	insertEntries = chstorage.Query("audit/insert_entries")
	headSQL       = chstorage.Query("audit/head")
	headsSQL      = chstorage.Query("audit/heads")
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
	}, []string{"outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.appends)
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

	details string // as stored
}

// Append adds one entry to the chain and returns once ClickHouse has it. An
// error means the entry is not (known to be) stored: the caller must not
// carry out the action it describes. Concurrent appends are committed
// together (one insert of consecutive chained entries), so a burst of admin
// actions costs one ClickHouse round trip per burst, not per action.
func (s *Store) Append(ctx context.Context, e Entry) error {
	if e.Action == "" {
		return errors.New("audit append: an audit entry needs an action")
	}
	if e.TsMs == 0 {
		e.TsMs = s.opts.Now().UnixMilli()
	}
	p := &pendingAppend{entry: e, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, p)
	s.qmu.Unlock()

	s.mu.Lock() // the holder commits everything queued so far
	select {
	case err := <-p.done: // a previous holder committed it
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
	return <-p.done
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
	return s.insert(ctx, entries...)
}

// start writes the chain's first entry, anchoring the other chains' heads.
func (s *Store) start(ctx context.Context) error {
	heads, err := s.heads(ctx)
	if err != nil {
		return err
	}
	details := map[string]string{}
	for chain, h := range heads {
		if chain != s.opts.Chain {
			details["anchor."+chain] = strconv.FormatUint(h.seq, 10) + ":" + h.hash
		}
	}
	return s.insert(ctx, Entry{Actor: "system", Action: ActionChainStart, Target: s.opts.Chain,
		Details: details, TsMs: s.opts.Now().UnixMilli()})
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
		r.Hash = r.computeHash()
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

type head struct {
	seq  uint64
	hash string
}

func (s *Store) loadHead(ctx context.Context) error {
	rows, err := headSQL.Query(ctx, s.conn, chstorage.Args{"chain": s.opts.Chain})
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	defer rows.Close()
	s.seq, s.hash = 0, ""
	for rows.Next() {
		if err := rows.Scan(&s.seq, &s.hash); err != nil {
			return fmt.Errorf("scan audit head: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	s.loaded = true
	return nil
}

func (s *Store) heads(ctx context.Context) (map[string]head, error) {
	rows, err := headsSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return nil, fmt.Errorf("read audit chains: %w", err)
	}
	defer rows.Close()
	out := map[string]head{}
	for rows.Next() {
		var c string
		var h head
		if err := rows.Scan(&c, &h.seq, &h.hash); err != nil {
			return nil, fmt.Errorf("scan audit chains: %w", err)
		}
		out[c] = h
	}
	return out, rows.Err()
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

// Problem kinds of a failed verification.
const (
	KindAltered  = "altered"  // the entry's content or hash does not match
	KindRemoved  = "removed"  // the entry is missing (a gap in the chain)
	KindInserted = "inserted" // a second, different entry with the same position
	KindAnchor   = "anchor"   // another chain's start anchored an entry that is gone or changed
	KindTail     = "truncated"
)

// Finding names one entry that fails verification.
type Finding struct {
	Chain  string `json:"chain"`
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Report is the result of Verify.
type Report struct {
	OK      bool         `json:"ok"`
	Entries int          `json:"entries"`
	Chains  []ChainState `json:"chains"`
	// First is the first entry that was altered or removed (chains in name
	// order, entries in sequence order); nil when the log verifies.
	First    *Finding  `json:"first,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// ChainState summarizes one chain.
type ChainState struct {
	Chain   string `json:"chain"`
	Entries int    `json:"entries"`
	HeadSeq uint64 `json:"head_seq"`
	OK      bool   `json:"ok"`
}

// Verify reads the whole log and checks every chain: consecutive sequence
// numbers from 1, each entry's hash over its content, each prev_hash equal to
// the previous entry's hash, the anchors of chain starts, and (for this
// store's own chain) that no entry it wrote after the stored head is gone.
// The first problem found is Report.First.
func (s *Store) Verify(ctx context.Context) (*Report, error) {
	rows, err := allEntriesSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	chains := map[string][]Row{}
	var names []string
	total := 0
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Chain, &r.Seq, &r.TsMs, &r.Actor, &r.Action, &r.Target, &r.details, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		if _, ok := chains[r.Chain]; !ok {
			names = append(names, r.Chain)
		}
		chains[r.Chain] = append(chains[r.Chain], r)
		total++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	sort.Strings(names)
	s.mu.Lock()
	ownSeq, ownLoaded := s.seq, s.loaded
	s.mu.Unlock()

	rep := &Report{OK: true, Entries: total}
	good := map[string]map[uint64]string{} // chain → seq → hash of verified entries
	for _, name := range names {
		findings, verified := verifyChain(chains[name])
		good[name] = verified
		if name == s.opts.Chain && ownLoaded {
			if n := len(chains[name]); n > 0 && chains[name][n-1].Seq < ownSeq {
				findings = append(findings, Finding{Chain: name, Seq: chains[name][n-1].Seq + 1, Kind: KindTail,
					Detail: fmt.Sprintf("this writer appended up to seq %d; entries after %d are gone", ownSeq, chains[name][n-1].Seq)})
			}
		}
		rep.Chains = append(rep.Chains, ChainState{Chain: name, Entries: len(chains[name]),
			HeadSeq: lastSeq(chains[name]), OK: len(findings) == 0})
		rep.Findings = append(rep.Findings, findings...)
	}
	if ownLoaded && ownSeq > 0 && chains[s.opts.Chain] == nil {
		rep.Findings = append(rep.Findings, Finding{Chain: s.opts.Chain, Seq: 1, Kind: KindRemoved,
			Detail: fmt.Sprintf("this writer's whole chain (%d entries) is gone", ownSeq)})
	}
	// Anchors: each chain start vouches for other chains' heads at the time.
	for _, name := range names {
		first := chains[name][0]
		if first.Seq != 1 || first.Action != ActionChainStart {
			continue
		}
		d, _ := decodeDetails(first.details)
		for k, v := range d {
			other, ok := strings.CutPrefix(k, "anchor.")
			if !ok {
				continue
			}
			seqStr, hash, _ := strings.Cut(v, ":")
			seq, _ := strconv.ParseUint(seqStr, 10, 64)
			if seq == 0 {
				continue
			}
			if got, ok := good[other][seq]; ok && got == hash {
				continue
			}
			if hasFinding(rep.Findings, other, seq) {
				continue
			}
			rep.Findings = append(rep.Findings, Finding{Chain: other, Seq: seq, Kind: KindAnchor,
				Detail: fmt.Sprintf("chain %s started when %s's head was seq %d (hash %.12s…); that entry is missing or changed", name, other, seq, hash)})
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Chain != b.Chain {
			return a.Chain < b.Chain
		}
		return a.Seq < b.Seq
	})
	if len(rep.Findings) > 0 {
		rep.OK = false
		rep.First = &rep.Findings[0]
	}
	return rep, nil
}

func hasFinding(fs []Finding, chain string, seq uint64) bool {
	for _, f := range fs {
		if f.Chain == chain && f.Seq <= seq {
			return true
		}
	}
	return false
}

func lastSeq(rows []Row) uint64 {
	if len(rows) == 0 {
		return 0
	}
	return rows[len(rows)-1].Seq
}

// verifyChain checks one chain (rows sorted by seq) and returns its findings
// (at most one per entry) and the hashes of the entries that verified.
func verifyChain(rows []Row) ([]Finding, map[uint64]string) {
	var out []Finding
	verified := map[uint64]string{}
	prevHash := ""
	next := uint64(1)
	var prevRow *Row
	for i := range rows {
		r := &rows[i]
		if prevRow != nil && r.Seq == prevRow.Seq {
			if r.same(prevRow) {
				continue // an identical re-insert is harmless
			}
			out = append(out, Finding{Chain: r.Chain, Seq: r.Seq, Kind: KindInserted,
				Detail: fmt.Sprintf("two different entries claim seq %d", r.Seq)})
			continue
		}
		for ; next < r.Seq; next++ {
			out = append(out, Finding{Chain: r.Chain, Seq: next, Kind: KindRemoved,
				Detail: fmt.Sprintf("entry %d is missing between %d and %d", next, next-1, r.Seq)})
			prevHash = "" // unknown: the next link cannot be checked
		}
		next = r.Seq + 1
		contentOK := r.computeHash() == r.Hash
		switch {
		case !contentOK:
			out = append(out, Finding{Chain: r.Chain, Seq: r.Seq, Kind: KindAltered,
				Detail: "the entry's content does not match its hash"})
		case prevRow != nil && prevRow.Seq == r.Seq-1 && r.PrevHash != prevHash && verified[prevRow.Seq] != "":
			// This entry is intact but points at a different predecessor:
			// the previous entry was rewritten (and re-hashed).
			out = append(out, Finding{Chain: r.Chain, Seq: prevRow.Seq, Kind: KindAltered,
				Detail: fmt.Sprintf("entry %d was rewritten: entry %d committed to a different hash", prevRow.Seq, r.Seq)})
			delete(verified, prevRow.Seq)
			verified[r.Seq] = r.Hash
		case r.Seq == 1 && r.PrevHash != "":
			out = append(out, Finding{Chain: r.Chain, Seq: r.Seq, Kind: KindAltered,
				Detail: "the first entry points at a predecessor"})
		default:
			verified[r.Seq] = r.Hash
		}
		prevHash = r.Hash
		prevRow = r
	}
	return out, verified
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
		var r Row
		if err := rows.Scan(&r.Chain, &r.Seq, &r.TsMs, &r.Actor, &r.Action, &r.Target, &r.details, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		r.Details, _ = decodeDetails(r.details)
		out = append(out, r)
	}
	return out, rows.Err()
}

var _ Appender = (*Store)(nil)
