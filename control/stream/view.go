package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// view is the materialized state of every credential: the newest record of
// each, rebuilt on start by reading credential.events from the beginning and
// kept current by following it (every instance holds every credential, so
// any instance answers reads and validates requests). Each applied record
// also feeds the normalizer's registry.
//
// Records are held packed (pack.go: a few hundred bytes instead of a full
// control.Record's kilobyte and more) in a slice of slots, with the fields
// the view's own indexes and the expiry sweep read beside them; readers get
// a fresh record unpacked from the slot.
type view struct {
	mu    sync.RWMutex
	slots []slot
	// index maps credential ids to slots (keys are the packed records'
	// own ids: no copy).
	index map[string]uint32
	// bySubject holds each subject's first slot; the others follow
	// through slot.nextOfSubject (a subject has a few credentials: a
	// chain costs nothing per credential, a million subjects' slices
	// would).
	bySubject map[string]uint32
	// byLock holds, per lock, the slots of the active credentials it
	// should hold, sorted by credential id: the expected access list
	// (ACL versions, acl_push).
	byLock  map[control.LockRef][]uint32
	waiters map[string][]chan *control.Record // command id → API calls waiting for it
	states  *prometheus.GaugeVec
	counts  map[string]int
	feed    *registry.Feed
	names   map[string]string // recurring strings of records (share)
	packed  names             // recurring strings of packed records
}

// slot is one credential: its newest record packed, and what the indexes
// and the sweep read without unpacking it.
type slot struct {
	data          string // packed record
	seq           uint64
	validUntilMs  int64
	state         uint32 // packed name
	nextOfSubject uint32 // next slot of the subject + 1 (0: the last)
}

func newView(feed *registry.Feed, states *prometheus.GaugeVec) *view {
	return &view{index: map[string]uint32{}, bySubject: map[string]uint32{},
		byLock:  map[control.LockRef][]uint32{},
		waiters: map[string][]chan *control.Record{}, states: states, counts: map[string]int{}, feed: feed}
}

// share replaces the strings of a freshly decoded record that recur across
// records (states, roles, sites, door groups, vendors and lock ids) with
// one shared copy each, so a fleet's newest records do not each hold their
// own: r must not be shared yet. What it interns is bounded by the estate
// (locks, sites, roles, door groups), not by the credentials.
func (v *view) share(r *control.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.names == nil {
		v.names = map[string]string{}
	}
	of := func(s *string) {
		if *s == "" {
			return
		}
		if c, ok := v.names[*s]; ok {
			*s = c
			return
		}
		v.names[*s] = *s
	}
	for _, s := range []*string{&r.State, &r.PrevState, &r.Op, &r.Role, &r.SiteID, &r.Record} {
		of(s)
	}
	for i := range r.Locks {
		of(&r.Locks[i].Vendor)
		of(&r.Locks[i].LockID)
	}
	for i := range r.Refs {
		of(&r.Refs[i].Vendor)
		of(&r.Refs[i].LockID)
	}
	for i := range r.DoorGroups {
		of(&r.DoorGroups[i])
	}
	for i := range r.ExtraGroups {
		of(&r.ExtraGroups[i])
	}
}

// record unpacks a slot's record (callers hold v.mu).
func (v *view) record(i uint32) *control.Record { return unpack(v.slots[i].data, &v.packed) }

// get returns a credential's newest record, the caller's to keep (records
// are unpacked on every call).
func (v *view) get(id string) (*control.Record, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	i, ok := v.index[id]
	if !ok {
		return nil, false
	}
	return v.record(i), true
}

// seq returns the Seq of a credential's newest record.
func (v *view) seq(id string) (uint64, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	i, ok := v.index[id]
	if !ok {
		return 0, false
	}
	return v.slots[i].seq, true
}

// put stores r if it is newer than what the view holds and reports whether
// it did. Waiters on r's command are told when r is its command's last record.
func (v *view) put(r *control.Record) bool {
	v.mu.Lock()
	i, ok := v.index[r.CredentialID]
	if ok && v.slots[i].seq >= r.Seq {
		v.mu.Unlock()
		return false
	}
	var cur *control.Record
	if ok {
		cur = v.record(i)
	} else {
		i = uint32(len(v.slots))
		v.slots = append(v.slots, slot{})
	}
	data := pack(r, &v.packed)
	s := &v.slots[i]
	if ok {
		delete(v.index, packedID(s.data)) // the key is the old record's
	}
	s.data, s.seq, s.validUntilMs = data, r.Seq, r.ValidUntilMs
	s.state = v.packed.add(r.State)
	v.index[packedID(data)] = i
	if ok && cur.State == event.StateActive {
		for _, l := range cur.Locks {
			if acl, at, found := v.aclAt(l, r.CredentialID); found {
				if acl = slices.Delete(acl, at, at+1); len(acl) == 0 {
					delete(v.byLock, l)
				} else {
					v.byLock[l] = acl
				}
			}
		}
	}
	if r.State == event.StateActive {
		for _, l := range r.Locks {
			if acl, at, found := v.aclAt(l, r.CredentialID); !found {
				v.byLock[l] = slices.Insert(acl, at, i)
			}
		}
	}
	if ok {
		v.counts[cur.State]--
		v.states.WithLabelValues(cur.State).Set(float64(v.counts[cur.State]))
		if cur.SubjectID != r.SubjectID {
			v.unlink(cur.SubjectID, i)
		}
	}
	v.counts[r.State]++
	v.states.WithLabelValues(r.State).Set(float64(v.counts[r.State]))
	if !ok || cur.SubjectID != r.SubjectID {
		v.link(r.SubjectID, i)
	}
	var notify []chan *control.Record
	if r.CommandDone && r.CommandID != "" {
		notify = v.waiters[r.CommandID]
		delete(v.waiters, r.CommandID)
	}
	var prevRefs []event.CredentialRef
	if ok {
		prevRefs = cur.Refs
	}
	v.mu.Unlock()
	if v.feed != nil {
		// The view holds the previous record: the feed need not keep its refs.
		v.feed.Replace(prevRefs, r.Credential)
	}
	for _, ch := range notify {
		ch <- r
	}
	return true
}

// link adds slot i to a subject's chain (callers hold v.mu).
func (v *view) link(subject string, i uint32) {
	head, ok := v.bySubject[subject]
	if !ok {
		subject = strings.Clone(subject)
	}
	v.slots[i].nextOfSubject = 0
	if ok {
		v.slots[i].nextOfSubject = head + 1
	}
	v.bySubject[subject] = i
}

// unlink removes slot i from a subject's chain (callers hold v.mu).
func (v *view) unlink(subject string, i uint32) {
	head, ok := v.bySubject[subject]
	if !ok {
		return
	}
	if head == i {
		if next := v.slots[i].nextOfSubject; next == 0 {
			delete(v.bySubject, subject)
		} else {
			v.bySubject[subject] = next - 1
		}
		return
	}
	for j := head; v.slots[j].nextOfSubject != 0; j = v.slots[j].nextOfSubject - 1 {
		if v.slots[j].nextOfSubject-1 == i {
			v.slots[j].nextOfSubject = v.slots[i].nextOfSubject
			return
		}
	}
}

// subject returns a subject's credentials, sorted by id.
func (v *view) subject(id string) []*control.Record {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := []*control.Record{}
	head, ok := v.bySubject[id]
	for j := head; ok; j = v.slots[j].nextOfSubject - 1 {
		out = append(out, v.record(j))
		ok = v.slots[j].nextOfSubject != 0
	}
	slices.SortFunc(out, func(a, b *control.Record) int { return strings.Compare(a.CredentialID, b.CredentialID) })
	return out
}

// live returns a subject's live credentials.
func (v *view) live(subject string) []*control.Record {
	var out []*control.Record
	for _, r := range v.subject(subject) {
		if lifecycle.IsLive(r.State) {
			out = append(out, r)
		}
	}
	return out
}

// acl returns the active credentials a lock should hold, sorted by id.
func (v *view) acl(l control.LockRef) []*control.Record {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*control.Record, 0, len(v.byLock[l]))
	for _, i := range v.byLock[l] {
		out = append(out, v.record(i))
	}
	return out
}

// aclAt finds a credential in a lock's access list: the list, its index
// (or where it would go) and whether it is there (callers hold v.mu).
func (v *view) aclAt(l control.LockRef, id string) ([]uint32, int, bool) {
	acl := v.byLock[l]
	i, found := slices.BinarySearchFunc(acl, id, func(i uint32, id string) int { return strings.Compare(packedID(v.slots[i].data), id) })
	return acl, i, found
}

// aclIDs returns the ids of the credentials a lock should hold.
func (v *view) aclIDs(l control.LockRef) map[string]bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[string]bool, len(v.byLock[l]))
	for _, i := range v.byLock[l] {
		out[strings.Clone(packedID(v.slots[i].data))] = true
	}
	return out
}

// each calls fn for every credential (under the read lock: fn must not
// call back into the view). Every record is unpacked: callers that need a
// few fields of every credential have their own method (expiring).
func (v *view) each(fn func(r *control.Record)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for i := range v.slots {
		fn(v.record(uint32(i)))
	}
}

// expiring returns the live credentials whose validity ended by nowMs,
// unpacking only those.
func (v *view) expiring(nowMs int64) []*control.Record {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []*control.Record
	for i := range v.slots {
		s := &v.slots[i]
		if s.validUntilMs > 0 && s.validUntilMs <= nowMs && lifecycle.IsLive(v.packed.text(s.state)) {
			out = append(out, v.record(uint32(i)))
		}
	}
	return out
}

func (v *view) size() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.slots)
}

// await registers interest in a command's result before it is published.
func (v *view) await(commandID string) (<-chan *control.Record, func()) {
	ch := make(chan *control.Record, 1)
	v.mu.Lock()
	v.waiters[commandID] = append(v.waiters[commandID], ch)
	v.mu.Unlock()
	return ch, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		list := v.waiters[commandID]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(v.waiters, commandID)
		} else {
			v.waiters[commandID] = list
		}
	}
}

// follower reads every partition of one topic from its first offset,
// without a consumer group, and knows how far it got, so callers can wait
// until it has applied everything published before a point in time.
type follower struct {
	cfg    bus.Config
	topic  string
	logger *slog.Logger
	handle func(m kafka.Message)

	mu      sync.Mutex
	next    map[int]int64 // partition → next offset to apply
	changed chan struct{} // closed and replaced on progress
	started chan struct{}
}

func newFollower(cfg bus.Config, topic string, logger *slog.Logger, handle func(kafka.Message)) *follower {
	return &follower{cfg: cfg, topic: topic, logger: logger, handle: handle,
		next: map[int]int64{}, changed: make(chan struct{}), started: make(chan struct{})}
}

func (f *follower) client() *kafka.Client {
	return f.cfg.Client(10 * time.Second)
}

// offsets returns the first or the next-to-be-written offset of every partition.
func (f *follower) offsets(ctx context.Context, last bool) (map[int]int64, error) {
	parts, err := bus.Partitions(ctx, f.cfg, f.topic, "")
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(parts))
	for _, p := range parts {
		if last {
			out[p.ID] = p.End
		} else {
			out[p.ID] = p.First
		}
	}
	return out, nil
}

// Run follows every partition until ctx ends.
func (f *follower) Run(ctx context.Context) error {
	var first map[int]int64
	if err := bus.Retry(ctx, f.logger, "follow "+f.topic, func(ctx context.Context) error {
		var err error
		first, err = f.offsets(ctx, false)
		return err
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	f.mu.Lock()
	for p, o := range first {
		f.next[p] = o
	}
	f.mu.Unlock()
	close(f.started)
	g, gctx := errgroup.WithContext(ctx)
	for p, o := range first {
		g.Go(func() error { return f.follow(gctx, p, o) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (f *follower) follow(ctx context.Context, partition int, from int64) error {
	cfg := bus.PartitionReaderConfig(f.cfg, f.topic, partition)
	cfg.MaxBytes = 16 << 20
	r := kafka.NewReader(cfg)
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("follow %s/%d: %w", f.topic, partition, err)
	}
	fetching := bus.Fetching{Op: fmt.Sprintf("follow %s/%d", f.topic, partition), Logger: f.logger}
	defer fetching.Stop(ctx)
	for {
		m, err := fetching.Fetch(ctx, r.FetchMessage) // rides out broker outages
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s/%d: %w", f.topic, partition, err)
		}
		f.handle(m)
		f.mu.Lock()
		f.next[partition] = m.Offset + 1
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

// catchUp returns once everything published to the topic before the call
// has been applied.
func (f *follower) catchUp(ctx context.Context) error {
	select {
	case <-f.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	ends, err := f.offsets(ctx, true)
	if err != nil {
		return err
	}
	for {
		f.mu.Lock()
		behind := false
		for p, end := range ends {
			if f.next[p] < end {
				behind = true
				break
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errors.Join(errors.New("credential.events not caught up"), ctx.Err())
		}
	}
}
