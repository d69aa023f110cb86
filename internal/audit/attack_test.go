package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// The two attacks of issue 14 on the real ClickHouse, by someone who can
// write to ClickHouse but holds neither the audit key nor access to the
// anchors: deleting the last entries of a chain, and changing an earlier
// entry and re-hashing the chain after it. Verify names both; after a
// restart the store does not continue (nor anchor) the doctored head.

func attackStore(t *testing.T, conn driver.Conn, chain string, keys *Keyring, anchors ...Anchor) *Store {
	t.Helper()
	s, err := NewStore(conn, Options{Chain: chain, Keys: keys, Anchors: anchors, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	return s
}

func appendEntries(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, s.Append(context.Background(), Entry{Actor: "tok_0123456789abcdef", ActorName: "ops laptop",
			Action: "credential.revoke", Target: fmt.Sprintf("cred-%d", i), Details: map[string]string{"reason": "move-out"}}))
	}
}

// waitMutations waits for ALTER … DELETE/UPDATE to be applied (18.16 has no
// mutations_sync).
func waitMutations(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n uint64
		err := conn.QueryRow(context.Background(), `SELECT count() FROM system.mutations WHERE database = ? AND table = 'audit_log' AND is_done = 0`, cfg.Database).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 50*time.Millisecond)
}

func logReport(t *testing.T, what string, rep *Report) {
	t.Helper()
	t.Logf("%s: ok=%v entries=%d checkpoints=%d keys_checked=%v unkeyed=%d", what, rep.OK, rep.Entries, rep.Checkpoints, rep.KeysChecked, rep.Unkeyed)
	for _, f := range rep.Findings {
		t.Logf("  %s seq %d: %s — %s", f.Chain, f.Seq, f.Kind, f.Detail)
	}
}

func startDetails(t *testing.T, s *Store, chain string) map[string]string {
	t.Helper()
	rows, err := s.Entries(context.Background(), ActionChainStart, chain, 10)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	return rows[0].Details
}

func TestAttackTruncation(t *testing.T) {
	conn, cfg := testenv.ClickHouse(t)
	ctx := context.Background()
	anchor := NewKafkaAnchor(testenv.Kafka(t, 1))
	t.Cleanup(func() { anchor.Close() })
	s := attackStore(t, conn, "ops", testKeys, anchor)
	appendEntries(t, s, 12) // seq 1..13, checkpointed at 13
	rep, err := attackStore(t, conn, "verifier", testKeys, anchor).Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.Findings)
	assert.Equal(t, uint64(13), rep.Chains[0].CheckpointSeq)

	// The attack: the last three entries go.
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE audit_log DELETE WHERE chain = 'ops' AND seq > 10"))
	waitMutations(t, conn, cfg)

	rep, err = attackStore(t, conn, "verifier", testKeys, anchor).Verify(ctx)
	require.NoError(t, err)
	logReport(t, "verify after truncation", rep)
	require.False(t, rep.OK)
	assert.Equal(t, Finding{Chain: "ops", Seq: 11, Kind: KindTail, Detail: rep.First.Detail}, *rep.First)
	assert.Contains(t, rep.First.Detail, "entries 11..13 were deleted at the tail")
	// Without the anchor nothing in ClickHouse betrays the cut: that is
	// why the checkpoints live elsewhere.
	rep, err = attackStore(t, conn, "verifier", testKeys).Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.OK)

	// A restart of the writer does not continue the cut chain; another
	// chain's start does not anchor the cut head.
	s2 := attackStore(t, conn, "ops", testKeys, anchor)
	appendEntries(t, s2, 1)
	require.True(t, strings.HasPrefix(s2.Chain(), "ops.r"), s2.Chain())
	assert.Contains(t, startDetails(t, s2, s2.Chain())["refused.ops"], "10:the chain ends at seq 10 but a checkpoint vouches for seq 13")
	other := attackStore(t, conn, "other", testKeys, anchor)
	appendEntries(t, other, 1)
	d := startDetails(t, other, "other")
	assert.NotContains(t, d, "anchor.ops")
	assert.Contains(t, d["unverified.ops"], "checkpoint vouches for seq 13")
	assert.Contains(t, d, "anchor."+s2.Chain())
	rep, err = attackStore(t, conn, "verifier", testKeys, anchor).Verify(ctx)
	require.NoError(t, err)
	logReport(t, "verify after the restart", rep)
	require.False(t, rep.OK)
	assert.Equal(t, KindTail, rep.First.Kind)
	assert.Len(t, rep.Findings, 1, "the new chains verify")
}

// rewriteTail replaces the entries of chain from seq on with change applied
// to the first of them, re-hashed and re-linked as someone without the key
// can (SHA-256, or a made-up MAC with the current key id).
func rewriteTail(t *testing.T, conn driver.Conn, cfg chstorage.Config, chain string, from uint64, change func(r *Row), forgedMAC bool) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash FROM audit_log WHERE chain = ? AND seq >= ? ORDER BY seq`, chain, from-1)
	require.NoError(t, err)
	var tail []Row
	for rows.Next() {
		r, err := scanRow(rows)
		require.NoError(t, err)
		tail = append(tail, r)
	}
	rows.Close()
	change(&tail[1])
	var out [][]any
	for i := 1; i < len(tail); i++ {
		r := &tail[i]
		r.PrevHash = tail[i-1].Hash
		r.Hash = r.computeHash()
		if forgedMAC {
			r.Hash = keyedPrefix + testKeys.Current() + ":" + r.Hash
		}
		out = append(out, []any{r.Chain, r.Seq, time.UnixMilli(r.TsMs).UTC(), r.TsMs, r.Actor, r.Action, r.Target, r.details, r.PrevHash, r.Hash})
	}
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("ALTER TABLE audit_log DELETE WHERE chain = '%s' AND seq >= %d", chain, from)))
	waitMutations(t, conn, cfg)
	require.NoError(t, chstorage.InsertRows(ctx, conn, Table, Columns, out...))
}

func TestAttackRehash(t *testing.T) {
	for _, forged := range []bool{false, true} {
		t.Run(fmt.Sprintf("forged_mac=%v", forged), func(t *testing.T) {
			conn, cfg := testenv.ClickHouse(t)
			ctx := context.Background()
			anchor := NewFileAnchor(filepath.Join(t.TempDir(), "checkpoints.jsonl"))
			s := attackStore(t, conn, "ops", testKeys, anchor)
			appendEntries(t, s, 12) // seq 1..13, checkpointed at 13

			// The attack: entry 5 names someone else, and entries 5..13 are
			// re-hashed and re-linked so every link holds again.
			rewriteTail(t, conn, cfg, "ops", 5, func(r *Row) { r.Actor = "tok_mallory" }, forged)

			rep, err := attackStore(t, conn, "verifier", testKeys, anchor).Verify(ctx)
			require.NoError(t, err)
			logReport(t, "verify with the key", rep)
			require.False(t, rep.OK)
			assert.Equal(t, "ops", rep.First.Chain)
			assert.Equal(t, uint64(5), rep.First.Seq)
			assert.Equal(t, KindRehashed, rep.First.Kind)
			assert.Equal(t, []string{KindRehashed}, slices.Compact(kinds(rep)), "entries 5..13")

			// Without the key, the signed checkpoint still catches it.
			rep, err = attackStore(t, conn, "verifier", nil, anchor).Verify(ctx)
			require.NoError(t, err)
			logReport(t, "verify without the key", rep)
			require.False(t, rep.OK)
			assert.Equal(t, Finding{Chain: "ops", Seq: 5, Kind: KindRehashed, Detail: rep.First.Detail}, *rep.First)

			// After a restart the doctored head is neither continued nor
			// anchored.
			s2 := attackStore(t, conn, "ops", testKeys, anchor)
			appendEntries(t, s2, 1)
			require.NotEqual(t, "ops", s2.Chain())
			assert.Contains(t, startDetails(t, s2, s2.Chain()), "refused.ops")
			other := attackStore(t, conn, "other", testKeys, anchor)
			appendEntries(t, other, 1)
			assert.NotContains(t, startDetails(t, other, "other"), "anchor.ops")
			assert.Contains(t, startDetails(t, other, "other"), "unverified.ops")
		})
	}
}

func kinds(rep *Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.Kind)
	}
	return out
}

// A forged checkpoint (someone writing to the anchor without the key) is
// reported, and a restart with an intact chain continues it.
func TestForgedCheckpointAndCleanRestart(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	anchor := NewFileAnchor(filepath.Join(t.TempDir(), "checkpoints.jsonl"))
	s := attackStore(t, conn, "ops", testKeys, anchor)
	appendEntries(t, s, 3)
	s2 := attackStore(t, conn, "ops", testKeys, anchor)
	appendEntries(t, s2, 2)
	assert.Equal(t, "ops", s2.Chain(), "an intact head is continued")
	require.NoError(t, anchor.Put(ctx, Checkpoint{Chain: "ops", Seq: 99, Hash: "x", KeyID: "k2", MAC: "00"}))
	rep, err := s2.Verify(ctx)
	require.NoError(t, err)
	logReport(t, "verify with a forged checkpoint", rep)
	require.False(t, rep.OK)
	assert.Equal(t, KindForgedCheckpoint, rep.First.Kind)
	assert.Len(t, rep.Findings, 1)
	rows, err := s2.Entries(ctx, "credential.", "", 10)
	require.NoError(t, err)
	assert.Equal(t, "ops laptop", rows[0].ActorName)
	assert.Equal(t, "k2", rows[0].KeyID)
	assert.NotContains(t, rows[0].Details, actorNameKey)
}

// flakyAnchor fails its first Put.
type flakyAnchor struct {
	FileAnchor
	failed bool
}

func (a *flakyAnchor) Put(ctx context.Context, cps ...Checkpoint) error {
	if !a.failed {
		a.failed = true
		return fmt.Errorf("anchor down")
	}
	return a.FileAnchor.Put(ctx, cps...)
}

// A checkpoint that could not be written does not fail the append; the
// next commit writes the checkpoint of the new head.
func TestCheckpointRetried(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	a := &flakyAnchor{FileAnchor: FileAnchor{path: filepath.Join(t.TempDir(), "cp.jsonl")}}
	s := attackStore(t, conn, "ops", testKeys, a)
	appendEntries(t, s, 1) // seq 1..2; the checkpoint fails
	cps, err := a.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Empty(t, cps)
	appendEntries(t, s, 1)
	cps, err = a.Checkpoints(ctx)
	require.NoError(t, err)
	require.Len(t, cps, 1)
	assert.Equal(t, uint64(3), cps[0].Seq)
}
