package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Problem kinds of a failed verification.
const (
	KindAltered  = "altered"  // the entry's content does not match its hash (the hash was left as it was)
	KindRehashed = "rehashed" // the entry was changed and its hash recomputed without the key
	KindRemoved  = "removed"  // the entry is missing (a gap in the chain, or a whole chain)
	KindInserted = "inserted" // a second, different entry with the same position
	KindAnchor   = "anchor"   // another chain's start anchored an entry that is gone or changed
	KindTail     = "truncated"
	// KindUnknownKey: keyed with a key id the verifier does not hold (a
	// forged id, or an old key missing from the key file).
	KindUnknownKey = "unknown_key"
	// KindForgedCheckpoint: a checkpoint whose signature does not verify.
	KindForgedCheckpoint = "forged_checkpoint"
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
	// KeysChecked says whether entries' MACs and checkpoints' signatures
	// were checked (the verifier held the keys).
	KeysChecked bool `json:"keys_checked"`
	// Unkeyed entries carry a SHA-256 without a secret (written before the
	// log was keyed): they are checked, but anyone who could write to
	// ClickHouse could have forged them.
	Unkeyed int `json:"unkeyed"`
	// Unchecked keyed entries could not be checked (no keys).
	Unchecked int `json:"unchecked"`
	// Checkpoints compared against the log (after their signatures held).
	Checkpoints int `json:"checkpoints"`
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
	// HeadHash is the hash of the chain's last entry.
	HeadHash string `json:"head_hash"`
	OK       bool   `json:"ok"`
	Unkeyed  int    `json:"unkeyed,omitempty"`
	// CheckpointSeq is the highest checkpointed seq (0: none).
	CheckpointSeq uint64 `json:"checkpoint_seq,omitempty"`
}

// Verify reads the whole log and checks every chain against its anchors'
// checkpoints (VerifyWith without extra checkpoints).
func (s *Store) Verify(ctx context.Context) (*Report, error) { return s.VerifyWith(ctx, nil) }

// VerifyWith reads the whole log and checks every chain: consecutive
// sequence numbers from 1; each entry's MAC (keyed) or SHA-256 (unkeyed)
// over its content; each prev_hash equal to the previous entry's hash; the
// anchors of chain starts; every checkpoint (the anchors' and extra, such
// as an operator's copy), whose signature must hold and whose entry must be
// there with the checkpointed hash; and, for this store's own chain, that
// no entry it wrote after the stored head is gone. Tail truncation is named
// truncated, an entry changed and re-hashed without the key rehashed.
func (s *Store) VerifyWith(ctx context.Context, extra []Checkpoint) (*Report, error) {
	rows, err := allEntriesSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	chains := map[string][]Row{}
	var names []string
	total := 0
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		if _, ok := chains[r.Chain]; !ok {
			names = append(names, r.Chain)
		}
		chains[r.Chain] = append(chains[r.Chain], r)
		total++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	cps := append([]Checkpoint(nil), extra...)
	for _, a := range s.opts.Anchors {
		got, err := a.Checkpoints(ctx)
		if err != nil {
			return nil, err
		}
		cps = append(cps, got...)
	}
	sort.Strings(names)
	s.mu.Lock()
	ownSeq, ownLoaded, own := s.seq, s.loaded, s.opts.Chain
	s.mu.Unlock()

	keys := s.opts.Keys
	rep := &Report{OK: true, Entries: total, KeysChecked: keys != nil}
	good := map[string]map[uint64]string{} // chain → seq → hash of verified entries
	states := map[string]int{}             // chain → index in rep.Chains
	for _, name := range names {
		v := verifyChain(chains[name], keys)
		good[name] = v.verified
		findings := v.findings
		if name == own && ownLoaded {
			if n := len(chains[name]); n > 0 && chains[name][n-1].Seq < ownSeq {
				findings = append(findings, Finding{Chain: name, Seq: chains[name][n-1].Seq + 1, Kind: KindTail,
					Detail: fmt.Sprintf("this writer appended up to seq %d; entries after %d are gone", ownSeq, chains[name][n-1].Seq)})
			}
		}
		rep.Unkeyed += v.unkeyed
		rep.Unchecked += v.unchecked
		st := ChainState{Chain: name, Entries: len(chains[name]), HeadSeq: lastSeq(chains[name]), Unkeyed: v.unkeyed}
		if n := len(chains[name]); n > 0 {
			st.HeadHash = chains[name][n-1].Hash
		}
		states[name] = len(rep.Chains)
		rep.Chains = append(rep.Chains, st)
		rep.Findings = append(rep.Findings, findings...)
	}
	if ownLoaded && ownSeq > 0 && chains[own] == nil {
		rep.Findings = append(rep.Findings, Finding{Chain: own, Seq: 1, Kind: KindRemoved,
			Detail: fmt.Sprintf("this writer's whole chain (%d entries) is gone", ownSeq)})
	}
	rep.Findings = append(rep.Findings, anchorFindings(chains, names, good, rep.Findings)...)
	// Highest first: a cut tail is named with the furthest checkpoint.
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq > cps[j].Seq })
	for _, cp := range cps {
		if keys != nil {
			if err := keys.VerifyCheckpoint(cp); err != nil {
				rep.Findings = append(rep.Findings, Finding{Chain: cp.Chain, Seq: cp.Seq, Kind: KindForgedCheckpoint,
					Detail: err.Error()})
				continue
			}
		}
		rep.Checkpoints++
		if i, ok := states[cp.Chain]; ok && cp.Seq > rep.Chains[i].CheckpointSeq {
			rep.Chains[i].CheckpointSeq = cp.Seq
		}
		if f, bad := checkCheckpoint(chains[cp.Chain], cp); bad {
			rep.Findings = mergeFinding(rep.Findings, f)
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Chain != b.Chain {
			return a.Chain < b.Chain
		}
		return a.Seq < b.Seq
	})
	for i := range rep.Chains {
		rep.Chains[i].OK = !hasChainFinding(rep.Findings, rep.Chains[i].Chain)
	}
	if len(rep.Findings) > 0 {
		rep.OK = false
		rep.First = &rep.Findings[0]
	}
	return rep, nil
}

// ErrNotVerified is returned by Checkpoint when the log does not verify:
// a checkpoint must never vouch for a doctored head.
var ErrNotVerified = errors.New("the audit log does not verify")

// ErrNoKey is returned by Checkpoint without keys.
var ErrNoKey = errors.New("signing checkpoints needs the audit key")

// Checkpoint verifies the log (as VerifyWith) and, when it holds, returns a
// signed checkpoint of every chain's head: what `keyfleet audit checkpoint`
// exports for safekeeping outside ClickHouse. publish also writes them to
// the store's anchors.
func (s *Store) Checkpoint(ctx context.Context, extra []Checkpoint, publish bool) ([]Checkpoint, *Report, error) {
	if s.opts.Keys == nil {
		return nil, nil, ErrNoKey
	}
	rep, err := s.VerifyWith(ctx, extra)
	if err != nil {
		return nil, nil, err
	}
	if !rep.OK {
		return nil, rep, ErrNotVerified
	}
	now := s.opts.Now().UnixMilli()
	out := make([]Checkpoint, 0, len(rep.Chains))
	for _, c := range rep.Chains {
		out = append(out, s.opts.Keys.Sign(Checkpoint{Chain: c.Chain, Seq: c.HeadSeq, Hash: c.HeadHash, TsMs: now}))
	}
	if publish {
		for _, a := range s.opts.Anchors {
			if err := a.Put(ctx, out...); err != nil {
				return out, rep, err
			}
		}
	}
	return out, rep, nil
}

// checkCheckpoint compares one (authentic) checkpoint with its chain.
func checkCheckpoint(rows []Row, cp Checkpoint) (Finding, bool) {
	when := formatTs(cp.TsMs)
	if len(rows) == 0 {
		return Finding{Chain: cp.Chain, Seq: 1, Kind: KindRemoved,
			Detail: fmt.Sprintf("the whole chain is gone; a checkpoint of %s vouches for seq %d", when, cp.Seq)}, true
	}
	last := lastSeq(rows)
	if last < cp.Seq {
		return Finding{Chain: cp.Chain, Seq: last + 1, Kind: KindTail,
			Detail: fmt.Sprintf("entries %d..%d were deleted at the tail: a checkpoint of %s vouches for seq %d (hash %.24s…)",
				last+1, cp.Seq, when, cp.Seq, cp.Hash)}, true
	}
	for i := range rows {
		if rows[i].Seq == cp.Seq && rows[i].Hash != cp.Hash {
			return Finding{Chain: cp.Chain, Seq: cp.Seq, Kind: KindRehashed,
				Detail: fmt.Sprintf("the entry's hash %.24s… is not the %.24s… a checkpoint of %s recorded: the chain was re-hashed",
					rows[i].Hash, cp.Hash, when)}, true
		}
	}
	return Finding{}, false
}

// anchorFindings checks the anchors of chain starts: each start vouches for
// other chains' heads at the time.
func anchorFindings(chains map[string][]Row, names []string, good map[string]map[uint64]string, have []Finding) []Finding {
	var out []Finding
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
			if hasFinding(have, other, seq) || hasFinding(out, other, seq) {
				continue
			}
			out = append(out, Finding{Chain: other, Seq: seq, Kind: KindAnchor,
				Detail: fmt.Sprintf("chain %s started when %s's head was seq %d (hash %.24s…); that entry is missing or changed", name, other, seq, hash)})
		}
	}
	return out
}

func hasFinding(fs []Finding, chain string, seq uint64) bool {
	for _, f := range fs {
		if f.Chain == chain && f.Seq <= seq {
			return true
		}
	}
	return false
}

// mergeFinding adds a checkpoint's finding f unless its entry already has
// one; an entry found altered whose hash also differs from a checkpoint was
// re-hashed, and is named so; a checkpoint's finding replaces an anchor's.
func mergeFinding(fs []Finding, f Finding) []Finding {
	for i := range fs {
		if fs[i].Chain == f.Chain && fs[i].Seq == f.Seq {
			// A checkpoint names what happened more precisely than a
			// content mismatch or another chain's anchor.
			if fs[i].Kind == KindAltered && f.Kind == KindRehashed || fs[i].Kind == KindAnchor {
				fs[i] = f
			}
			return fs
		}
	}
	return append(fs, f)
}

func hasChainFinding(fs []Finding, chain string) bool {
	for _, f := range fs {
		if f.Chain == chain {
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

func formatTs(ms int64) string {
	if ms <= 0 {
		return "an unknown time"
	}
	return timeUTC(ms)
}

// chainCheck is verifyChain's result.
type chainCheck struct {
	findings           []Finding
	verified           map[uint64]string // seq → hash of entries that verified
	unkeyed, unchecked int
}

// verifyChain checks one chain (rows sorted by seq) and returns its findings
// (at most one per entry), the hashes of the entries that verified and how
// many entries were unkeyed or could not be checked.
func verifyChain(rows []Row, keys *Keyring) chainCheck {
	out := chainCheck{verified: map[uint64]string{}}
	add := func(r *Row, seq uint64, kind, detail string) {
		out.findings = append(out.findings, Finding{Chain: r.Chain, Seq: seq, Kind: kind, Detail: detail})
	}
	prevHash := ""
	next := uint64(1)
	keyedSeen := false
	var prevRow *Row
	for i := range rows {
		r := &rows[i]
		if prevRow != nil && r.Seq == prevRow.Seq {
			if r.same(prevRow) {
				continue // an identical re-insert is harmless
			}
			add(r, r.Seq, KindInserted, fmt.Sprintf("two different entries claim seq %d", r.Seq))
			continue
		}
		for ; next < r.Seq; next++ {
			add(r, next, KindRemoved, fmt.Sprintf("entry %d is missing between %d and %d", next, next-1, r.Seq))
			prevHash = "" // unknown: the next link cannot be checked
		}
		next = r.Seq + 1
		succ := successor(rows, i)
		st := r.check(keys)
		switch st {
		case statusUnkeyedOK:
			out.unkeyed++
		case statusUnchecked:
			out.unchecked++
		}
		switch {
		case st == statusMalformed:
			add(r, r.Seq, KindAltered, "the entry's hash is neither a SHA-256 nor an hmac-sha256:<key>:<mac>")
		case st == statusUnknownKey:
			add(r, r.Seq, KindUnknownKey, fmt.Sprintf("keyed with key %q, which the verifier does not hold", r.KeyID))
		case st == statusUnkeyedOK && keyedSeen:
			add(r, r.Seq, KindRehashed, "hashed without the key after keyed entries: changed and re-hashed by someone without the key")
		case st == statusBad && succ != nil && succ.PrevHash != r.Hash:
			add(r, r.Seq, KindRehashed, fmt.Sprintf("the entry does not match its hash, and entry %d committed to a different one: changed and re-hashed", succ.Seq))
		case st == statusBad && r.KeyID != "":
			add(r, r.Seq, KindAltered, "the entry does not match its MAC: changed (or its MAC made up) without the key")
		case st == statusBad:
			add(r, r.Seq, KindAltered, "the entry's content does not match its hash")
		case prevRow != nil && prevRow.Seq == r.Seq-1 && r.PrevHash != prevHash && out.verified[prevRow.Seq] != "":
			// This entry is intact but points at a different predecessor:
			// the previous entry was rewritten (and re-hashed).
			add(r, prevRow.Seq, KindRehashed, fmt.Sprintf("entry %d was rewritten and re-hashed: entry %d committed to a different hash", prevRow.Seq, r.Seq))
			delete(out.verified, prevRow.Seq)
			out.verified[r.Seq] = r.Hash
		case r.Seq == 1 && r.PrevHash != "":
			add(r, r.Seq, KindAltered, "the first entry points at a predecessor")
		default:
			out.verified[r.Seq] = r.Hash
		}
		if st == statusOK {
			keyedSeen = true
		}
		prevHash = r.Hash
		prevRow = r
	}
	return out
}

// successor returns the entry after rows[i] when it is the next seq.
func successor(rows []Row, i int) *Row {
	for j := i + 1; j < len(rows); j++ {
		if rows[j].Seq == rows[i].Seq {
			continue
		}
		if rows[j].Seq == rows[i].Seq+1 {
			return &rows[j]
		}
		return nil
	}
	return nil
}

func timeUTC(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
