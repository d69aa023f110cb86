package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Run is the owner side: it consumes identity.writes in the owner group
// and decides the intents of the partition it owns (see the package doc),
// and prunes staging, until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	r := bus.NewGroupReader(s.opts.Bus, bus.TopicIdentityWrites, bus.GroupIdentityOwner)
	defer r.Close()
	dlq := bus.NewWriter(s.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	go s.prune(ctx)
	err := bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 1000, MaxWait: 5 * time.Millisecond, Idle: time.Millisecond,
		Logger: s.log, Name: bus.TopicIdentityWrites, DeadLetter: dlq}, s.decide)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// decide decides one batch of intents. The index is reloaded from
// identity_resources when the batch does not continue where the last one
// this instance decided ended (first batch, a rebalance, a re-delivery).
func (s *Store) decide(ctx context.Context, msgs []kafka.Message) error {
	s.owned.Set(1)
	reloaded := false
	if s.idx == nil || !s.continues(msgs) {
		if err := bus.Retry(ctx, s.log, "load identity index", s.loadIndex); err != nil {
			return err
		}
		reloaded = true
	}
	writes := make([]write, 0, len(msgs))
	deadlines := make([]int64, 0, len(msgs))
	var tokens []string
	var bad []kafka.Message // undecodable: dead-lettered once the rest is decided
	var why error
	for _, m := range msgs {
		var in intent
		err := json.Unmarshal(m.Value, &in)
		if err == nil && in.Token == "" {
			err = errors.New("no token")
		}
		if err != nil {
			s.writes.WithLabelValues("unknown", outcomeInvalid).Inc()
			bad, why = append(bad, m), err
			continue
		}
		w := write{token: in.Token, op: in.Op, typ: in.Type, id: in.ID, prev: uint64(max(in.Prev, 0))}
		writes = append(writes, w)
		deadlines = append(deadlines, in.DeadlineMs)
		if in.Op != opDelete {
			tokens = append(tokens, in.Token)
		}
	}
	// After a reload, intents already decided (a batch stored but not
	// committed) keep their decision: their effects are in the index.
	prior := map[string]decision{}
	var staged map[string]row
	if err := bus.Retry(ctx, s.log, "read staged identity writes", func(ctx context.Context) error {
		var err error
		if reloaded {
			all := make([]string, len(writes))
			for i, w := range writes {
				all[i] = w.token
			}
			if prior, err = s.readDecisions(ctx, all); err != nil {
				return err
			}
		}
		staged, err = s.readStaged(ctx, tokens)
		return err
	}); err != nil {
		s.idx = nil
		return err
	}
	now := s.opts.Now()
	var copyTokens []string
	var tombstones [][]any
	var decisions [][]any
	decided := make([]decision, len(writes))
	for i := range writes {
		w := &writes[i]
		if d, ok := prior[w.token]; ok {
			decided[i] = d
			continue
		}
		if st, ok := staged[w.token]; ok && st.typ == w.typ && st.id == w.id {
			w.staged, w.version = true, st.version
			w.keys = uniqueKeys{userName: st.userName, externalID: st.externalID, subject: st.subject}
		}
		outcome, detail := outcomeExpired, ""
		if now.UnixMilli() <= deadlines[i] {
			outcome, detail = s.idx.decide(*w)
		}
		if outcome == outcomeApplied {
			e := s.idx.byID[w.typ][w.id]
			switch {
			case w.op == opDelete && e.token == w.token:
				tombstones = append(tombstones, append(row{typ: w.typ, id: w.id, version: e.version, deleted: true,
					createdMs: now.UnixMilli(), modifiedMs: now.UnixMilli()}.values(), w.token))
			case w.op != opDelete:
				copyTokens = append(copyTokens, w.token) // a re-delivered one again: the same row, deduplicated
			}
		}
		s.writes.WithLabelValues(w.op, outcome).Inc()
		decided[i] = decision{outcome, detail}
		decisions = append(decisions, []any{w.token, now.UTC().Truncate(time.Second), outcome, detail, now.UnixMilli()})
	}
	if err := bus.Retry(ctx, s.log, "store identity writes", func(ctx context.Context) error {
		if err := s.copyStaged(ctx, copyTokens); err != nil {
			return err
		}
		if len(tombstones) > 0 {
			if err := insertResourcesSQL.Insert(ctx, s.opts.Conn, tombstones...); err != nil {
				return fmt.Errorf("store identity deletes: %w", err)
			}
		}
		if len(decisions) > 0 {
			if err := insertDecisionsSQL.Insert(ctx, s.opts.Conn, decisions...); err != nil {
				return fmt.Errorf("store identity decisions: %w", err)
			}
		}
		return nil
	}); err != nil {
		s.idx = nil // what was stored is unknown: reload before deciding again
		return err
	}
	s.mu.Lock()
	for i, w := range writes {
		if ch, ok := s.waiters[w.token]; ok {
			select {
			case ch <- decided[i]:
			default:
			}
		}
	}
	s.mu.Unlock()
	for _, m := range msgs {
		s.next[m.Partition] = m.Offset + 1
	}
	if len(bad) > 0 {
		return bus.Permanent("undecodable_identity_write", why, bad...) // dead-lettered, the batch committed
	}
	return nil
}

// continues reports whether msgs start where the last decided batch of
// their partitions ended.
func (s *Store) continues(msgs []kafka.Message) bool {
	seen := map[int]bool{}
	for _, m := range msgs {
		if seen[m.Partition] {
			continue
		}
		seen[m.Partition] = true
		if next, ok := s.next[m.Partition]; !ok || next != m.Offset {
			return false
		}
	}
	return true
}

func (s *Store) readDecisions(ctx context.Context, tokens []string) (map[string]decision, error) {
	out := map[string]decision{}
	if len(tokens) == 0 {
		return out, nil
	}
	rows, err := decisionsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"tokens": tokens})
	if err != nil {
		return nil, fmt.Errorf("read identity decisions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var d decision
		if err := rows.Scan(&token, &d.outcome, &d.detail); err != nil {
			return nil, fmt.Errorf("scan identity decision: %w", err)
		}
		out[token] = d
	}
	return out, rows.Err()
}

// loadIndex rebuilds the index from identity_resources.
func (s *Store) loadIndex(ctx context.Context) error {
	rows, err := indexSQL.Query(ctx, s.opts.Conn, nil)
	if err != nil {
		return fmt.Errorf("load identity index: %w", err)
	}
	defer rows.Close()
	x := newIndex()
	n := 0
	for rows.Next() {
		var typ, id, token string
		var e entry
		var del uint8
		if err := rows.Scan(&typ, &id, &e.version, &del, &token, &e.keys.userName, &e.keys.externalID, &e.keys.subject); err != nil {
			return fmt.Errorf("scan identity index: %w", err)
		}
		e.deleted, e.token = del == 1, token
		if e.deleted {
			e.keys = uniqueKeys{}
		}
		x.put(typ, id, &e)
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load identity index: %w", err)
	}
	s.idx, s.next = x, map[int]int64{}
	s.log.Info("identity owner: index loaded", "resources", n)
	return nil
}

func (s *Store) readStaged(ctx context.Context, tokens []string) (map[string]row, error) {
	out := map[string]row{}
	if len(tokens) == 0 {
		return out, nil
	}
	rows, err := stagedSQL.Query(ctx, s.opts.Conn, chstorage.Args{"tokens": tokens})
	if err != nil {
		return nil, fmt.Errorf("read staged identity writes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var r row
		if err := rows.Scan(&token, &r.typ, &r.id, &r.version, &r.userName, &r.externalID, &r.subject); err != nil {
			return nil, fmt.Errorf("scan staged identity write: %w", err)
		}
		out[token] = r
	}
	return out, rows.Err()
}

// copyStaged copies applied versions from identity_staged into
// identity_resources, inside ClickHouse.
func (s *Store) copyStaged(ctx context.Context, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	if err := copyStagedSQL.Exec(ctx, s.opts.Conn, chstorage.Args{"tokens": tokens}); err != nil {
		return fmt.Errorf("store identity writes: %w", err)
	}
	return nil
}

// prune drops staging and decision partitions older than two days and
// merges superseded versions (and deleted users' documents) away, every
// Prune while this instance owns the writes.
func (s *Store) prune(ctx context.Context) {
	t := time.NewTicker(s.opts.Prune)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.PruneOnce(ctx); err != nil {
			s.log.Warn("identity prune", "err", err)
		}
	}
}

// PruneOnce drops identity_staged and identity_decisions partitions older
// than two days and runs OPTIMIZE FINAL on identity_resources, so old
// versions and deleted people's documents leave the disk too.
func (s *Store) PruneOnce(ctx context.Context) error {
	cutoff := s.opts.Now().UTC().AddDate(0, 0, -2).Format("20060102")
	for _, table := range []string{"identity_staged", "identity_decisions"} {
		rows, err := partitionsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"table": table})
		if err != nil {
			return fmt.Errorf("list %s partitions: %w", table, err)
		}
		var old []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return fmt.Errorf("scan partition: %w", err)
			}
			if len(p) == len(cutoff) && p < cutoff {
				old = append(old, p)
			}
		}
		rows.Close()
		for _, p := range old {
			if err := dropPartitionSQL.Exec(ctx, s.opts.Conn, chstorage.Args{"table": table, "partition": p}); err != nil {
				return fmt.Errorf("drop %s partition %s: %w", table, p, err)
			}
		}
	}
	if err := optimizeResourcesSQL.Exec(ctx, s.opts.Conn, nil); err != nil {
		return fmt.Errorf("optimize identity_resources: %w", err)
	}
	return nil
}
