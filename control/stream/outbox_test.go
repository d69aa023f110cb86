package stream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

const t0 = int64(1_800_000_000_000)

func cmd(id, typ, cred string, seq uint64) gateway.Command {
	return gateway.Command{CommandID: id, Type: typ, Vendor: "nuki", LockID: "n1", CredentialID: cred, Seq: seq,
		IssuedMs: t0, Attempt: 1, SentMs: t0}
}

func TestOutboxResendsWithBackoffUntilAcked(t *testing.T) {
	o := newOutbox(time.Second, 8*time.Second, time.Hour, 1)
	o.sent(cmd("c1", gateway.CommandRevoke, "cr1", 5))
	resend, gaveUp := o.due(t0 + 799)
	assert.Empty(t, resend, "not before the first wait (1 s ±20 %)")
	assert.Empty(t, gaveUp)
	var sends []int64
	at := t0
	for len(sends) < 5 {
		at += 100
		resend, _ = o.due(at)
		for _, c := range resend {
			assert.Equal(t, "c1", c.CommandID, "same command id")
			assert.Equal(t, uint64(5), c.Seq)
			assert.Equal(t, len(sends)+2, c.Attempt)
			assert.Equal(t, at, c.SentMs)
			assert.Equal(t, t0, c.IssuedMs, "issued once")
			sends = append(sends, at)
		}
	}
	// The waits double (1, 2, 4, 8, 8 s) with ±20 % jitter.
	prev := t0
	for i, want := range []int64{1000, 2000, 4000, 8000, 8000} {
		gap := sends[i] - prev
		assert.GreaterOrEqual(t, gap, want*8/10, "wait %d", i)
		assert.LessOrEqual(t, gap, want*12/10+100, "wait %d", i)
		prev = sends[i]
	}
	n, _ := o.stats(at)
	assert.Equal(t, 1, n)
	o.acked(gateway.Ack{CommandID: "c1", Status: gateway.AckFailed, Error: "busy"}, at)
	n, _ = o.stats(at)
	assert.Equal(t, 1, n, "a failed ack keeps it")
	o.acked(gateway.Ack{CommandID: "c1", Status: gateway.AckApplied, Attempt: 3}, at) // an earlier send's ack confirms too
	n, _ = o.stats(at)
	assert.Zero(t, n)
	resend, _ = o.due(at + time.Hour.Milliseconds())
	assert.Empty(t, resend)
}

func TestOutboxGivesUpWithTheLastError(t *testing.T) {
	o := newOutbox(time.Second, time.Second, 10*time.Second, 2)
	o.sent(cmd("c1", gateway.CommandRevoke, "cr1", 5))
	o.acked(gateway.Ack{CommandID: "c1", Status: gateway.AckFailed, Error: "lock unreachable"}, t0)
	var gaveUp []store.GiveUp
	for at := t0; len(gaveUp) == 0 && at < t0+60_000; at += 200 {
		_, g := o.due(at)
		gaveUp = append(gaveUp, g...)
	}
	require.Len(t, gaveUp, 1)
	assert.Equal(t, "c1", gaveUp[0].Command.CommandID)
	assert.Equal(t, "lock unreachable", gaveUp[0].Error)
	assert.GreaterOrEqual(t, gaveUp[0].AtMs-t0, int64(10_000))
	assert.Greater(t, gaveUp[0].Attempts, 5)
	n, _ := o.stats(t0 + 60_000)
	assert.Zero(t, n)
}

func TestOutboxNewerCommandSupersedes(t *testing.T) {
	o := newOutbox(time.Second, time.Second, time.Hour, 3)
	o.sent(cmd("grant", gateway.CommandGrant, "cr1", 5))
	o.sent(cmd("revoke", gateway.CommandRevoke, "cr1", 6))
	o.sent(cmd("stale", gateway.CommandGrant, "cr1", 4)) // an older one arriving late changes nothing
	o.sent(cmd("other", gateway.CommandGrant, "cr2", 1))
	resend, _ := o.due(t0 + 5000)
	var ids []string
	for _, c := range resend {
		ids = append(ids, c.CommandID)
	}
	assert.Equal(t, []string{"other", "revoke"}, ids, "the superseded grant is never re-sent")
	// An acl_push is per lock: a newer push supersedes an older one.
	o.sent(gateway.Command{CommandID: "p1", Type: gateway.CommandACLPush, Vendor: "nuki", LockID: "n1", IssuedMs: t0, SentMs: t0})
	assert.True(t, o.pendingPush(control.LockRef{Vendor: "nuki", LockID: "n1"}))
	o.sent(gateway.Command{CommandID: "p2", Type: gateway.CommandACLPush, Vendor: "nuki", LockID: "n1", IssuedMs: t0, SentMs: t0})
	o.acked(gateway.Ack{CommandID: "p1", Status: gateway.AckApplied}, t0)
	assert.True(t, o.pendingPush(control.LockRef{Vendor: "nuki", LockID: "n1"}), "p1's ack does not confirm p2")
	o.acked(gateway.Ack{CommandID: "p2", Status: gateway.AckApplied}, t0)
	assert.False(t, o.pendingPush(control.LockRef{Vendor: "nuki", LockID: "n1"}))
}

func TestOutboxAdoption(t *testing.T) {
	o := newOutbox(time.Second, 10*time.Second, time.Hour, 4)
	now := t0 + 60_000
	stale := store.Outstanding{Command: cmd("c1", gateway.CommandRevoke, "cr1", 5), Attempts: 2, LastSentMs: t0}
	fresh := store.Outstanding{Command: cmd("c2", gateway.CommandRevoke, "cr2", 5), Attempts: 1, LastSentMs: now - 100}
	assert.True(t, o.adopt(stale, now, false), "nobody re-sent it for a minute: adopted")
	assert.False(t, o.adopt(stale, now, false), "known")
	assert.False(t, o.adopt(fresh, now, false), "its owner is at it")
	assert.True(t, o.adopt(fresh, now, true), "on start, everything unacknowledged is adopted")
	o.acked(gateway.Ack{CommandID: "c3", Status: gateway.AckApplied}, now)
	assert.False(t, o.adopt(store.Outstanding{Command: cmd("c3", gateway.CommandRevoke, "cr3", 5), LastSentMs: t0}, now, true),
		"acknowledged lately (ClickHouse may not have the ack yet)")
	resend, _ := o.due(now + 1000)
	assert.Len(t, resend, 2, "adopted commands are re-sent soon")
	for _, c := range resend {
		if c.CommandID == "c1" {
			assert.Equal(t, 3, c.Attempt)
		}
	}
}

func TestTrackerEscalatesOnceAndSurvivesReload(t *testing.T) {
	now := time.UnixMilli(t0)
	tr := newTracker(newTestMetrics(), time.Minute, func() time.Time { return now }, nil)
	l1, l2 := control.LockRef{Vendor: "nuki", LockID: "n1"}, control.LockRef{Vendor: "matter", LockID: "m1"}
	tr.add(revKey{"rv1", "cr1"}, "s1", control.ScopeSubject, t0, []control.LockRef{l1, l2}, t0)
	assert.Empty(t, tr.overdue(t0+59_000))
	tr.ack(gateway.Ack{RevocationID: "rv1", CredentialID: "cr1", Vendor: "nuki", LockID: "n1", Status: gateway.AckApplied, AppliedMs: t0 + 500}, t0+500)
	over := tr.overdue(t0 + 61_000)
	require.Len(t, over, 1)
	assert.Equal(t, []control.LockRef{l2}, over[0].locks, "only the lock still pending")
	assert.Equal(t, "s1", over[0].subject)
	assert.Empty(t, tr.overdue(t0+120_000), "escalated once")
	tr.unescalate(revKey{"rv1", "cr1"})
	assert.Len(t, tr.overdue(t0+120_000), 1, "again when the escalation could not be sent")
	// Giving up on the last lock ends the tracking.
	tr.gaveUp(gateway.Command{RevocationID: "rv1", CredentialID: "cr1", Vendor: "matter", LockID: "m1"}, t0+130_000)
	n, _ := tr.pending()
	assert.Zero(t, n)
}

func newTestMetrics() *metrics.Metrics { return metrics.New(nil) }
