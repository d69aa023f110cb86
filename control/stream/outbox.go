package stream

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// outKey is what a lock command is about: a credential on a lock, or the
// lock's whole list (acl_push, credential "").
type outKey struct {
	lock       control.LockRef
	credential string
}

type outEntry struct {
	cmd      gateway.Command // as last sent
	attempts int
	lastSent int64
	next     int64 // when to send again
	lastErr  string
}

// outbox holds the lock commands this instance sent (or adopted) that no
// lock has acknowledged as applied, and says when to send each again:
// backoff from ResendAfter doubling up to ResendMax, ±20 % jitter, until
// the give-up passes. Only the newest command per credential and lock is
// kept: a newer one supersedes it, so a re-send never undoes a later
// change (and gateways order by seq besides).
type outbox struct {
	mu       sync.Mutex
	byKey    map[outKey]*outEntry
	byID     map[string]outKey
	recent   map[string]int64 // command ids acknowledged lately → when
	base     time.Duration
	maxDelay time.Duration
	giveUp   time.Duration
	r        *rand.Rand
}

func newOutbox(base, maxDelay, giveUp time.Duration, seed uint64) *outbox {
	return &outbox{byKey: map[outKey]*outEntry{}, byID: map[string]outKey{}, recent: map[string]int64{},
		base: base, maxDelay: maxDelay, giveUp: giveUp, r: rand.New(rand.NewPCG(seed, 0x6f7574626f78))}
}

func keyOf(c gateway.Command) outKey {
	k := outKey{lock: control.LockRef{Vendor: c.Vendor, LockID: c.LockID}}
	if c.Type != gateway.CommandACLPush {
		k.credential = c.CredentialID
	}
	return k
}

// delay is the wait after the attempts-th send.
func (o *outbox) delay(attempts int) time.Duration {
	d := float64(o.base) * math.Pow(2, float64(max(attempts-1, 0)))
	d = min(d, float64(o.maxDelay))
	return time.Duration(d * (0.8 + 0.4*o.r.Float64()))
}

// sent records a command as sent at its SentMs (attempt c.Attempt).
func (o *outbox) sent(c gateway.Command) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.putLocked(c, max(c.Attempt, 1), c.SentMs, "")
}

func (o *outbox) putLocked(c gateway.Command, attempts int, sentMs int64, lastErr string) {
	k := keyOf(c)
	if cur := o.byKey[k]; cur != nil && cur.cmd.CommandID != c.CommandID {
		if c.Seq < cur.cmd.Seq {
			return // an older command: the newer one stays
		}
		delete(o.byID, cur.cmd.CommandID) // superseded
	}
	e := &outEntry{cmd: c, attempts: attempts, lastSent: sentMs, lastErr: lastErr}
	e.next = sentMs + o.delay(attempts).Milliseconds()
	o.byKey[k], o.byID[c.CommandID] = e, k
}

// adopt takes over a command another owner (or this one before a restart)
// sent and no lock acknowledged, unless it is known, acknowledged lately, or
// re-sent recently enough that its owner is evidently still at it.
func (o *outbox) adopt(x store.Outstanding, nowMs int64, force bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := x.Command.CommandID
	if _, ok := o.byID[id]; ok {
		return false
	}
	if _, ok := o.recent[id]; ok {
		return false
	}
	if !force && nowMs-x.LastSentMs < 2*o.delay(x.Attempts).Milliseconds()+int64(o.base/time.Millisecond) {
		return false
	}
	o.putLocked(x.Command, max(x.Attempts, 1), x.LastSentMs, "")
	if e := o.byKey[keyOf(x.Command)]; e != nil && e.cmd.CommandID == id {
		e.next = nowMs + int64(o.r.Float64()*float64(o.base.Milliseconds())) // soon, spread out
	}
	return true
}

// acked applies a lock's ack: applied confirms the command (any attempt);
// failed keeps it for the next send and remembers why.
func (o *outbox) acked(a gateway.Ack, nowMs int64) {
	if a.CommandID == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.byID[a.CommandID]
	if a.Status == gateway.AckApplied {
		o.recent[a.CommandID] = nowMs
		if ok {
			delete(o.byID, a.CommandID)
			delete(o.byKey, k)
		}
		return
	}
	if ok {
		o.byKey[k].lastErr = a.Error
	}
}

// due returns the commands to send again at now (their next attempt, with
// SentMs now; the caller publishes them), and those given up.
func (o *outbox) due(nowMs int64) (resend []gateway.Command, gaveUp []store.GiveUp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	giveUp := o.giveUp.Milliseconds()
	for k, e := range o.byKey {
		if e.next > nowMs {
			continue
		}
		if nowMs-e.cmd.IssuedMs >= giveUp {
			why := e.lastErr
			gaveUp = append(gaveUp, store.GiveUp{Command: e.cmd, Attempts: e.attempts, Error: why, AtMs: nowMs})
			delete(o.byKey, k)
			delete(o.byID, e.cmd.CommandID)
			continue
		}
		e.attempts++
		e.lastSent = nowMs
		e.next = nowMs + o.delay(e.attempts).Milliseconds()
		c := e.cmd
		c.Attempt, c.SentMs = e.attempts, nowMs
		e.cmd = c
		resend = append(resend, c)
	}
	// Forget acknowledgements older than the give-up: nothing adopts them.
	for id, at := range o.recent {
		if nowMs-at > giveUp {
			delete(o.recent, id)
		}
	}
	sort.Slice(resend, func(i, j int) bool { return resend[i].CommandID < resend[j].CommandID })
	return resend, gaveUp
}

// pendingPush reports whether an acl_push to the lock is unacknowledged.
func (o *outbox) pendingPush(l control.LockRef) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.byKey[outKey{lock: l}]
	return ok
}

// stats returns how many commands are outstanding and the age of the
// oldest (ms).
func (o *outbox) stats(nowMs int64) (n int, oldestMs int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.byKey {
		oldestMs = max(oldestMs, nowMs-e.cmd.IssuedMs)
	}
	return len(o.byKey), oldestMs
}

// update replaces the content of an outstanding command before it is sent
// again (its expected ACL version); the id, seq and issue time stay.
func (o *outbox) update(c gateway.Command) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if k, ok := o.byID[c.CommandID]; ok {
		o.byKey[k].cmd = c
	}
}
