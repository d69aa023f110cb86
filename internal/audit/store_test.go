package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func appendN(t *testing.T, s *audit.Store, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, s.Append(context.Background(), audit.Entry{
			Actor: "ops-token", Action: "credential.revoke", Target: fmt.Sprintf("cred-%d", i),
			Details: map[string]string{"reason": "move-out", "n": fmt.Sprint(i)},
		}))
	}
}

// mutate runs an ALTER ... UPDATE/DELETE and waits until it is applied
// (18.16 has no mutations_sync).
func mutate(t *testing.T, conn driver.Conn, cfg chstorage.Config, stmt string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, conn.Exec(ctx, stmt))
	require.Eventually(t, func() bool {
		var n uint64
		err := conn.QueryRow(ctx, `SELECT count() FROM system.mutations WHERE database = ? AND table = 'audit_log' AND is_done = 0`, cfg.Database).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 50*time.Millisecond)
}

func TestVerifyIntactLog(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	s, err := audit.NewStore(conn, audit.Options{Chain: "a"})
	require.NoError(t, err)
	appendN(t, s, 20)
	rep, err := s.Verify(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %+v", rep.Findings)
	assert.Equal(t, 21, rep.Entries) // chain start + 20
	assert.Nil(t, rep.First)

	// A new store on the same chain (a restart) continues it.
	s2, err := audit.NewStore(conn, audit.Options{Chain: "a"})
	require.NoError(t, err)
	appendN(t, s2, 2)
	rep, err = s2.Verify(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %+v", rep.Findings)
	assert.Equal(t, uint64(23), rep.Chains[0].HeadSeq)
}

func TestVerifyNamesTamperedEntry(t *testing.T) {
	f := func(name string, tamper func(t *testing.T, conn driver.Conn, cfg chstorage.Config), wantSeq uint64, wantKind string) {
		t.Run(name, func(t *testing.T) {
			conn, cfg := testenv.ClickHouse(t)
			s, err := audit.NewStore(conn, audit.Options{Chain: "chain-1"})
			require.NoError(t, err)
			appendN(t, s, 12)
			tamper(t, conn, cfg)
			// A fresh store (another process) verifies too, without this
			// writer's memory of its head.
			other, err := audit.NewStore(conn, audit.Options{Chain: "verifier"})
			require.NoError(t, err)
			for _, v := range []*audit.Store{s, other} {
				rep, err := v.Verify(context.Background())
				require.NoError(t, err)
				require.False(t, rep.OK)
				require.NotNil(t, rep.First)
				assert.Equal(t, "chain-1", rep.First.Chain)
				assert.Equal(t, wantSeq, rep.First.Seq, "first finding: %+v", rep.First)
				assert.Equal(t, wantKind, rep.First.Kind, "first finding: %+v", rep.First)
			}
		})
	}
	f("altered actor", func(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
		mutate(t, conn, cfg, "ALTER TABLE audit_log UPDATE actor = 'mallory' WHERE chain = 'chain-1' AND seq = 6")
	}, 6, audit.KindAltered)
	f("altered details", func(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
		mutate(t, conn, cfg, `ALTER TABLE audit_log UPDATE details = '{"n":"3","reason":"nothing to see"}' WHERE chain = 'chain-1' AND seq = 4`)
	}, 4, audit.KindAltered)
	f("deleted entry", func(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
		mutate(t, conn, cfg, "ALTER TABLE audit_log DELETE WHERE chain = 'chain-1' AND seq = 9")
	}, 9, audit.KindRemoved)
	f("deleted and renumbered", func(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
		mutate(t, conn, cfg, "ALTER TABLE audit_log DELETE WHERE chain = 'chain-1' AND seq = 3")
		// ClickHouse cannot update key columns; re-insert the later rows
		// one lower instead, as a careful attacker would.
		ctx := context.Background()
		rows, err := conn.Query(ctx, `SELECT chain, seq, ts, ts_ms, actor, action, target, details, prev_hash, hash FROM audit_log WHERE chain = 'chain-1' AND seq > 3 ORDER BY seq`)
		require.NoError(t, err)
		var moved [][]any
		for rows.Next() {
			var chain, actor, action, target, details, prev, hash string
			var seq uint64
			var ts time.Time
			var tsMs int64
			require.NoError(t, rows.Scan(&chain, &seq, &ts, &tsMs, &actor, &action, &target, &details, &prev, &hash))
			moved = append(moved, []any{chain, seq - 1, ts, tsMs, actor, action, target, details, prev, hash})
		}
		rows.Close()
		mutate(t, conn, cfg, "ALTER TABLE audit_log DELETE WHERE chain = 'chain-1' AND seq > 3")
		require.NoError(t, chstorage.InsertRows(ctx, conn, audit.Table, audit.Columns, moved...))
	}, 3, audit.KindAltered)
}

func TestVerifyAnchorsDetectLostTail(t *testing.T) {
	conn, cfg := testenv.ClickHouse(t)
	ctx := context.Background()
	a, err := audit.NewStore(conn, audit.Options{Chain: "a"})
	require.NoError(t, err)
	appendN(t, a, 5) // seq 1..6
	b, err := audit.NewStore(conn, audit.Options{Chain: "b"})
	require.NoError(t, err)
	appendN(t, b, 1) // b's start anchors a@6
	// Cut a's last entry; a fresh verifier only knows it through b's anchor.
	mutate(t, conn, cfg, "ALTER TABLE audit_log DELETE WHERE chain = 'a' AND seq = 6")
	v, err := audit.NewStore(conn, audit.Options{Chain: "v"})
	require.NoError(t, err)
	rep, err := v.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK)
	assert.Equal(t, "a", rep.First.Chain)
	assert.Equal(t, uint64(6), rep.First.Seq)
	assert.Equal(t, audit.KindAnchor, rep.First.Kind)
	// The writer itself knows its head.
	rep, err = a.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), rep.First.Seq)
}

func TestAppendFailsWhenClickHouseFails(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	s, err := audit.NewStore(conn, audit.Options{Chain: "a"})
	require.NoError(t, err)
	appendN(t, s, 1)
	require.NoError(t, conn.Exec(ctx, "RENAME TABLE audit_log TO audit_log_away"))
	assert.Error(t, s.Append(ctx, audit.Entry{Actor: "x", Action: "credential.revoke"}))
	require.NoError(t, conn.Exec(ctx, "RENAME TABLE audit_log_away TO audit_log"))
	appendN(t, s, 1)
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %+v", rep.Findings)
	assert.Equal(t, 3, rep.Entries)
}

func TestConcurrentAppendsShareInserts(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	s, err := audit.NewStore(conn, audit.Options{Chain: "busy"})
	require.NoError(t, err)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Append(ctx, audit.Entry{Actor: "responder", Action: "credential.suspend", Target: fmt.Sprintf("c-%d", i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %+v", rep.Findings)
	assert.Equal(t, 65, rep.Entries)
}

// AppendAll stores a batch in order, as one insert, on one chain with
// concurrent single appends.
func TestAppendAllKeepsOrder(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	s, err := audit.NewStore(conn, audit.Options{Chain: "batch"})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, audit.Entry{Actor: "admin", Action: "token.create", Target: "t"}))
	var batch []audit.Entry
	for i := range 10 {
		batch = append(batch, audit.Entry{Actor: "responder:r", Action: "responder.ticket", Target: fmt.Sprintf("a-%d", i)})
	}
	require.NoError(t, s.AppendAll(ctx, batch))
	require.NoError(t, s.AppendAll(ctx, nil))
	rows, err := s.Entries(ctx, "responder.", "", 100)
	require.NoError(t, err)
	require.Len(t, rows, 10)
	for i, r := range rows { // newest first
		assert.Equal(t, fmt.Sprintf("a-%d", 9-i), r.Target)
	}
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %+v", rep.Findings)
	assert.Equal(t, 12, rep.Entries)
}

func BenchmarkAppend(b *testing.B) {
	conn, _ := testenv.ClickHouse(b)
	s, err := audit.NewStore(conn, audit.Options{Chain: "bench"})
	require.NoError(b, err)
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append(ctx, audit.Entry{Actor: "bench", Action: "credential.revoke", Target: "c"}); err != nil {
				b.Error(err)
			}
		}
	})
}

func BenchmarkAppendSerial(b *testing.B) {
	conn, _ := testenv.ClickHouse(b)
	s, err := audit.NewStore(conn, audit.Options{Chain: "bench"})
	require.NoError(b, err)
	ctx := context.Background()
	for b.Loop() {
		if err := s.Append(ctx, audit.Entry{Actor: "bench", Action: "credential.revoke", Target: "c"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAnchored is BenchmarkAppendSerial with keyed entries and a
// checkpoint on Kafka after every commit.
func BenchmarkAppendAnchored(b *testing.B) {
	conn, _ := testenv.ClickHouse(b)
	keys, err := audit.KeyringFromSecret("benchmark-audit-key-0123456789abcdef")
	require.NoError(b, err)
	anchor := audit.NewKafkaAnchor(testenv.Kafka(b, 1))
	b.Cleanup(func() { anchor.Close() })
	s, err := audit.NewStore(conn, audit.Options{Chain: "bench", Keys: keys, Anchors: []audit.Anchor{anchor}})
	require.NoError(b, err)
	ctx := context.Background()
	for b.Loop() {
		if err := s.Append(ctx, audit.Entry{Actor: "bench", Action: "credential.revoke", Target: "c"}); err != nil {
			b.Fatal(err)
		}
	}
}
