package control

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// LockIndex answers which locks hold a credential of a site's door groups
// ("*" = every door group); control/stream implements it on the lock
// registry.
type LockIndex interface {
	ForCredential(site string, groups []string) []LockRef
}

// Applier is the owner's state machine: it applies commands to the
// credentials' current records and says what that produces, without doing
// any of it (no Kafka, no ClickHouse): the caller publishes and stores a
// Batch, then commits the commands.
type Applier struct {
	// Current returns a credential's newest record.
	Current func(id string) (*Record, bool)
	// Live returns the live credentials of a subject (nil: no duplicate
	// check beyond the batch).
	Live  func(subject string) []*Record
	Locks LockIndex
	// Enforce says what a grant carries to each lock (nil: everything).
	Enforce Enforcement
	// NewID returns the id of a lock command (default uuid.NewString).
	NewID func() string
}

// Outcomes of a command (the keyfleet_control_commands_total label).
const (
	OutcomeApplied   = "applied"
	OutcomeRejected  = "rejected"
	OutcomeDuplicate = "duplicate"
	OutcomeInvalid   = "invalid" // undecodable (counted by the caller)
)

// Outcome is what became of one command.
type Outcome struct{ Op, Outcome string }

// Batch is what applying a batch of commands produces, in the order it
// must become visible: the records first (the entitlement layer), then the
// lock commands and the rows.
type Batch struct {
	Now int64 // ms: the time of every record and lock command of the batch

	Records         []*Record         // lifecycle records for credential.events
	LockCommands    []gateway.Command // for lock.commands
	Items           []ItemRow         // request item statuses
	Revocations     []RevocationRow   // one per revoked credential
	RevocationLocks []RevocationLockRow
	// Track are the revocations that wait for lock acks; NoLocks those no
	// lock held (done once their record is published).
	Track    []TrackedRevocation
	NoLocks  []RevocationRow
	Issued   []*Record // credentials issued (time-to-issue is observed on them)
	Sessions []Session // device sessions to revoke
	// Acks are the lock acks forwarded on control.commands, in order.
	Acks        []gateway.Ack
	Outcomes    []Outcome
	Activations int // successful activations

	overlay map[string]*Record // credential id → newest record in the batch
}

// ItemRow is the status of one request item (control_request_items).
type ItemRow struct {
	RequestID    string
	Item         int
	CredentialID string
	Status       string
	Error        string
	Detail       string
}

// RevocationRow is one revoked credential of a revocation (revocations).
type RevocationRow struct {
	RevocationID, CredentialID, SubjectID, Scope, DeviceID string
	RequestedMs, DisabledMs                                int64
	Locks                                                  int
}

// RevocationLockRow is one lock told to drop a revoked credential
// (revocation_locks).
type RevocationLockRow struct {
	RevocationID, CredentialID, Vendor, LockID, CommandID string
	IssuedMs                                              int64
}

// TrackedRevocation is a revoked credential waiting for its locks' acks.
type TrackedRevocation struct {
	RevocationID, CredentialID, SubjectID, Scope string
	RequestedMs                                  int64
	Locks                                        []LockRef
}

// Session is a device/wallet session to revoke (the middle revocation
// layer): for a revocation (RevocationID set) or a device change. Key is
// its idempotency key at the session provider.
type Session struct {
	Key, RevocationID, CredentialID, SubjectID, DeviceID, Scope, Reason string
	RequestedMs                                                         int64
}

// Apply applies cmds in order at now. A command that fails leaves nothing
// behind but its request item's failure; a command a record already
// remembers is a duplicate (a re-delivered revocation re-queues its
// effects, which are idempotent).
func (a Applier) Apply(now time.Time, cmds []Command) *Batch {
	if a.NewID == nil {
		a.NewID = uuid.NewString
	}
	b := &Batch{Now: now.UnixMilli(), overlay: map[string]*Record{}}
	for _, c := range cmds {
		a.apply(b, c)
	}
	return b
}

// batchMark is how much a batch held before a command was applied.
type batchMark struct{ records, lockCmds, items, revs, revLocks, track, issued, sessions, noLocks int }

func (b *Batch) mark() batchMark {
	return batchMark{len(b.Records), len(b.LockCommands), len(b.Items), len(b.Revocations), len(b.RevocationLocks),
		len(b.Track), len(b.Issued), len(b.Sessions), len(b.NoLocks)}
}

// rollback drops what a failed command added and restores its credential.
func (b *Batch) rollback(m batchMark, id string, cur *Record) {
	b.Records, b.LockCommands, b.Items = b.Records[:m.records], b.LockCommands[:m.lockCmds], b.Items[:m.items]
	b.Revocations, b.RevocationLocks, b.Track = b.Revocations[:m.revs], b.RevocationLocks[:m.revLocks], b.Track[:m.track]
	b.Issued, b.Sessions, b.NoLocks = b.Issued[:m.issued], b.Sessions[:m.sessions], b.NoLocks[:m.noLocks]
	if cur != nil {
		b.overlay[id] = cur
	} else {
		delete(b.overlay, id)
	}
}

func (b *Batch) count(op, outcome string) { b.Outcomes = append(b.Outcomes, Outcome{op, outcome}) }

func (a Applier) cur(b *Batch, id string) *Record {
	if r, ok := b.overlay[id]; ok {
		return r
	}
	r, _ := a.Current(id)
	return r
}

func (a Applier) apply(b *Batch, c Command) {
	if c.Op == OpAck {
		if c.Ack != nil {
			b.Acks = append(b.Acks, *c.Ack)
		}
		b.count(OpAck, OutcomeApplied)
		return
	}
	cur := a.cur(b, c.CredentialID)
	if cur != nil && cur.Applied(c.CommandID) {
		b.count(c.Op, OutcomeDuplicate)
		if (c.Op == lifecycle.OpRevoke || c.Op == lifecycle.OpExpire) && c.RevocationID != "" && cur.RevocationID == c.RevocationID {
			a.revocationEffects(b, c, cur)
		}
		if c.RequestID != "" {
			b.Items = append(b.Items, ItemFor(c, cur, nil))
		}
		return
	}
	m := b.mark()
	err := a.applyOp(b, c, cur)
	if err != nil {
		b.count(c.Op, OutcomeRejected)
		b.rollback(m, c.CredentialID, cur) // a failed command leaves nothing behind
		if c.RequestID != "" {
			b.Items = append(b.Items, ItemFor(c, cur, err))
		}
		return
	}
	b.count(c.Op, OutcomeApplied)
	if len(b.Records) > m.records {
		b.Records[len(b.Records)-1].CommandDone = true
	}
	if c.RequestID != "" {
		b.Items = append(b.Items, ItemFor(c, a.cur(b, c.CredentialID), nil))
	}
}

// ItemFor is the status row of a command's request item: r is the
// credential after the command (before it, when err says why it failed).
func ItemFor(c Command, r *Record, err error) ItemRow {
	it := ItemRow{RequestID: c.RequestID, Item: c.Item, CredentialID: c.CredentialID}
	if err != nil {
		it.Status = StatusFailed
		it.Error = err.Error()
		var te *lifecycle.TransitionError
		if errors.As(err, &te) {
			it.Detail = "current_state=" + te.From
		}
		return it
	}
	if c.Op != lifecycle.OpRequest {
		it.Status = StatusApplied
		if r != nil {
			it.Detail = "state=" + r.State
		}
		return it
	}
	switch {
	case r == nil:
		it.Status = StatusPending
	case r.State == event.StateRequested:
		it.Status = StatusPending
		it.Detail = fmt.Sprintf("awaiting approval (%d of %d)", len(r.Approvers), ApprovalsNeeded(r.ApprovalRule))
	case r.State == event.StateRevoked || r.State == event.StateArchived:
		if r.IssuedMs > 0 {
			it.Status = StatusIssued
		} else {
			it.Status = StatusFailed
			it.Error = "revoked before it was issued"
		}
		it.Detail = "state=" + r.State
	default:
		it.Status = StatusIssued
		it.Detail = "state=" + r.State
	}
	return it
}

// Stricter returns the approval rule that needs more approvers.
func Stricter(a, b string) string {
	if ApprovalsNeeded(b) > ApprovalsNeeded(a) {
		return b
	}
	return a
}

// ApprovalsNeeded is the number of approvers a rule needs.
func ApprovalsNeeded(rule string) int {
	switch rule {
	case ApprovalOne:
		return 1
	case ApprovalTwo:
		return 2
	}
	return 0
}

// step makes the transition op from prev (nil for a new credential) and
// emits the resulting record; mutate changes the new record's fields.
func (a Applier) step(b *Batch, prev *Record, op string, c Command, mutate func(r *Record)) (*Record, error) {
	from := lifecycle.None
	if prev != nil {
		from = prev.State
	}
	to, err := lifecycle.Next(op, from)
	if err != nil {
		return nil, err
	}
	var r *Record
	if prev == nil {
		r = &Record{}
	} else {
		r = prev.Clone()
	}
	r.SessionRevokedDevice = ""
	r.Reason = c.Reason
	if mutate != nil {
		mutate(r)
	}
	r.PrevState, r.State, r.Op = from, to, op
	if prev != nil {
		r.Seq = prev.Seq + 1
	} else {
		r.Seq = 1
	}
	r.TsMs = b.Now
	r.CommandID = c.CommandID
	r.CommandDone = false
	r.Actor = c.Actor
	r.remember(c.CommandID)
	b.Records = append(b.Records, r)
	b.overlay[r.CredentialID] = r
	return r, nil
}

func (a Applier) applyOp(b *Batch, c Command, cur *Record) error {
	if c.Op != lifecycle.OpRequest && cur == nil {
		return ErrNotFound
	}
	switch c.Op {
	case lifecycle.OpRequest:
		return a.applyRequest(b, c, cur)
	case lifecycle.OpApprove:
		return a.applyApprove(b, c, cur)
	case lifecycle.OpActivate:
		if c.DeviceID != "" && cur.DeviceID != "" && c.DeviceID != cur.DeviceID {
			return ErrDeviceMismatch
		}
		_, err := a.activate(b, cur, c)
		return err
	case lifecycle.OpDeviceChange:
		r, err := a.step(b, cur, lifecycle.OpDeviceChange, c, func(r *Record) {
			if r.DeviceID != "" && r.DeviceID != c.DeviceID {
				r.SessionRevokedDevice = r.DeviceID
				b.Sessions = append(b.Sessions, Session{Key: "device-change/" + c.CommandID, CredentialID: r.CredentialID,
					SubjectID: r.SubjectID, DeviceID: r.DeviceID, Reason: "device change", RequestedMs: requestedAt(c, b)})
			}
			r.DeviceID = c.DeviceID
			r.Attested = false
			r.Attestation = nil
			r.Device = nil
			r.ActivatedMs = 0
		})
		if err != nil {
			return err
		}
		if cur.State == event.StateActive {
			// Back to pending_activation: the locks drop it until the new
			// device proves possession.
			a.lockCommands(b, r, gateway.CommandRevoke, r.Locks, "")
		}
		if c.Attestation != nil {
			_, err = a.activate(b, r, c)
		}
		return err
	case lifecycle.OpSuspend:
		r, err := a.step(b, cur, lifecycle.OpSuspend, c, nil)
		if err != nil {
			return err
		}
		a.lockCommands(b, r, gateway.CommandRevoke, r.Locks, "")
		return nil
	case lifecycle.OpReinstate:
		r, err := a.step(b, cur, lifecycle.OpReinstate, c, nil)
		if err != nil {
			return err
		}
		a.lockCommands(b, r, gateway.CommandGrant, r.Locks, "")
		return nil
	case lifecycle.OpRevoke, lifecycle.OpExpire:
		return a.applyRevoke(b, c, cur)
	case lifecycle.OpArchive:
		_, err := a.step(b, cur, lifecycle.OpArchive, c, nil)
		return err
	case lifecycle.OpUpdate:
		return a.applyUpdate(b, c, cur)
	}
	return fmt.Errorf("unknown op %q", c.Op)
}

func (a Applier) applyRequest(b *Batch, c Command, cur *Record) error {
	if cur != nil {
		if cur.RequestID == c.RequestID && c.RequestID != "" {
			return nil // the same request again (idempotent)
		}
		return ErrExists
	}
	s := c.Spec
	if s == nil {
		return errors.New("request without a credential spec")
	}
	if !s.AllowAdditional {
		if id, ok := a.duplicate(b, s, c.CredentialID); ok {
			return &DuplicateError{Existing: id}
		}
	}
	r, err := a.step(b, nil, lifecycle.OpRequest, c, func(r *Record) {
		r.CredentialID = c.CredentialID
		r.SubjectID = s.SubjectID
		r.Role = s.Role
		r.SiteID = s.SiteID
		r.DeviceID = s.DeviceID
		r.Refs = s.Refs
		r.ValidFromMs, r.ValidUntilMs = s.ValidFromMs, s.ValidUntilMs
		r.BreakGlass, r.BreakGlassMs = s.BreakGlass, s.BreakGlassMs
		r.RequestID, r.Item, r.RequestedMs = c.RequestID, c.Item, c.TsMs
		r.Issuer = c.Actor
		r.ApprovalRule = s.ApprovalRule
		r.TemplateVersion = s.Template
		r.DoorGroups = s.DoorGroups
		r.ExtraGroups = s.ExtraGroups
		r.Windows = s.Windows
		r.Exception, r.ExceptionWhy = s.Exception, s.ExceptionWhy
		r.Attestation = s.Attestation
	})
	if err != nil {
		return err
	}
	if ApprovalsNeeded(r.ApprovalRule) > 0 {
		return nil
	}
	r, err = a.step(b, r, lifecycle.OpApprove, c, nil)
	if err != nil {
		return err
	}
	return a.issue(b, r, c)
}

func (a Applier) applyApprove(b *Batch, c Command, cur *Record) error {
	if _, err := lifecycle.Next(lifecycle.OpAddApproval, cur.State); err != nil {
		return err
	}
	if c.Actor == cur.Issuer {
		return ErrSelfApproval
	}
	if slices.Contains(cur.Approvers, c.Actor) {
		return ErrDuplicateApproval
	}
	op := lifecycle.OpAddApproval
	if len(cur.Approvers)+1 >= ApprovalsNeeded(cur.ApprovalRule) {
		op = lifecycle.OpApprove
	}
	r, err := a.step(b, cur, op, c, func(r *Record) { r.Approvers = append(r.Approvers, c.Actor) })
	if err != nil || op == lifecycle.OpAddApproval {
		return err
	}
	return a.issue(b, r, c)
}

// issue takes an approved credential to issued (the entitlement, and the
// locks of its door groups that will hold it), then to pending_activation,
// and on to active when it already carries verified attestation evidence.
// The locks are told only on activation: a pending_activation key opens
// nothing.
func (a Applier) issue(b *Batch, r *Record, c Command) error {
	locks := a.Locks.ForCredential(r.SiteID, r.DoorGroups)
	r, err := a.step(b, r, lifecycle.OpIssue, c, func(r *Record) {
		r.IssuedMs = b.Now
		r.Locks = locks
		if r.BreakGlassMs > 0 {
			r.ValidFromMs, r.ValidUntilMs = b.Now, b.Now+r.BreakGlassMs
		}
		a.setWeaker(r)
	})
	if err != nil {
		return err
	}
	b.Issued = append(b.Issued, r)
	if r.RequestID != "" && r.RequestID != c.RequestID {
		// Issued by an approval: the original request's item is done too.
		b.Items = append(b.Items, ItemRow{RequestID: r.RequestID, Item: r.Item, CredentialID: r.CredentialID,
			Status: StatusIssued, Detail: "state=" + event.StatePendingActivation})
	}
	r, err = a.step(b, r, lifecycle.OpDeliver, c, nil)
	if err != nil {
		return err
	}
	if r.Attestation != nil && r.DeviceID != "" {
		_, err = a.activate(b, r, c)
	}
	return err
}

// activate takes a pending credential to active and grants it on its
// locks: only now does the key open doors.
func (a Applier) activate(b *Batch, r *Record, c Command) (*Record, error) {
	r, err := a.step(b, r, lifecycle.OpActivate, c, func(r *Record) {
		if c.Attestation != nil {
			r.Attestation = c.Attestation
		}
		if r.DeviceID == "" && r.Attestation != nil {
			r.DeviceID = r.Attestation.DeviceID
		}
		r.Attested = r.Attestation.Verified()
		if r.Attestation != nil && r.Attestation.Device != nil {
			d := *r.Attestation.Device
			r.Device = &d
		}
		r.ActivatedMs = b.Now
	})
	if err != nil {
		return nil, err
	}
	b.Activations++
	a.lockCommands(b, r, gateway.CommandGrant, r.Locks, "")
	return r, nil
}

// duplicate returns a live credential of the spec's subject, role and
// device other than id, from the batch or the view.
func (a Applier) duplicate(b *Batch, s *Spec, id string) (string, bool) {
	match := func(r *Record) bool {
		return r.CredentialID != id && r.SubjectID == s.SubjectID && r.Role == s.Role && r.DeviceID == s.DeviceID &&
			lifecycle.IsLive(r.State)
	}
	var found []string
	for _, r := range b.overlay {
		if match(r) {
			found = append(found, r.CredentialID)
		}
	}
	if a.Live != nil {
		for _, r := range a.Live(s.SubjectID) {
			if o, ok := b.overlay[r.CredentialID]; ok {
				r = o // the batch's newer record decides
			}
			if match(r) {
				found = append(found, r.CredentialID)
			}
		}
	}
	if len(found) == 0 {
		return "", false
	}
	slices.Sort(found)
	return found[0], true
}

func requestedAt(c Command, b *Batch) int64 {
	if c.TsMs > 0 {
		return c.TsMs
	}
	return b.Now
}

func (a Applier) applyRevoke(b *Batch, c Command, cur *Record) error {
	if c.Op == lifecycle.OpExpire && cur.ValidUntilMs > b.Now {
		return errors.New("not expired: valid_until is in the future")
	}
	r, err := a.step(b, cur, c.Op, c, func(r *Record) {
		r.RevocationID = c.RevocationID
		if r.DeviceID != "" {
			r.SessionRevokedDevice = r.DeviceID
		}
	})
	if err != nil {
		return err
	}
	a.revocationEffects(b, c, r)
	return nil
}

// revocationEffects queues what a revocation does besides its record: a
// revoke command to every lock that was told to hold the credential, the
// revocation's rows in ClickHouse, and its tracking. A re-delivered revoke
// command (the owner may have crashed after publishing the record) queues
// them again: all of it is idempotent (a second revoke on a lock is a
// no-op, the rows deduplicate by key).
func (a Applier) revocationEffects(b *Batch, c Command, r *Record) {
	scope := c.Scope
	if scope == "" {
		scope = ScopeCredential
	}
	locks := r.Locks // set at issue: empty when it never was
	requested := c.TsMs
	if requested <= 0 {
		requested = b.Now
	}
	cmdIDs := a.lockCommands(b, r, gateway.CommandRevoke, locks, c.RevocationID)
	row := RevocationRow{RevocationID: c.RevocationID, CredentialID: r.CredentialID, SubjectID: r.SubjectID,
		Scope: scope, DeviceID: r.SessionRevokedDevice, RequestedMs: requested, Locks: len(locks)}
	b.Revocations = append(b.Revocations, row)
	// The device-session layer: every revoked credential gets a session
	// row, with no device to revoke when it had none.
	b.Sessions = append(b.Sessions, Session{Key: c.RevocationID + "/" + r.CredentialID, RevocationID: c.RevocationID,
		CredentialID: r.CredentialID, SubjectID: r.SubjectID, DeviceID: r.SessionRevokedDevice, Scope: scope,
		Reason: c.Reason, RequestedMs: requested})
	for i, l := range locks {
		b.RevocationLocks = append(b.RevocationLocks, RevocationLockRow{RevocationID: c.RevocationID,
			CredentialID: r.CredentialID, Vendor: l.Vendor, LockID: l.LockID, CommandID: cmdIDs[i], IssuedMs: b.Now})
	}
	if len(locks) > 0 {
		b.Track = append(b.Track, TrackedRevocation{RevocationID: c.RevocationID, CredentialID: r.CredentialID,
			SubjectID: r.SubjectID, Scope: scope, RequestedMs: requested, Locks: locks})
	} else {
		b.NoLocks = append(b.NoLocks, row)
	}
}

func (a Applier) applyUpdate(b *Batch, c Command, cur *Record) error {
	t := c.Template
	if t == nil && len(c.Moves) > 0 {
		return a.applyMoves(b, c, cur)
	}
	if t == nil || t.Role != cur.Role {
		return errors.New("update without the credential's role template")
	}
	if t.Version <= cur.TemplateVersion {
		return nil // already on this version or newer
	}
	groups, why := t.ResolveGroups(cur.ExtraGroups)
	r, err := a.step(b, cur, lifecycle.OpUpdate, c, func(r *Record) {
		r.TemplateVersion = t.Version
		r.DoorGroups = groups
		r.Windows = t.Windows
		r.Exception, r.ExceptionWhy = why != "" || r.BreakGlass, why
		if r.BreakGlass {
			r.ExceptionWhy = "break-glass"
		}
		if r.State == event.StateRequested {
			r.ApprovalRule = Stricter(r.ApprovalRule, t.Approval)
		}
		if t.MaxValiditySeconds > 0 && !r.BreakGlass {
			from := r.ValidFromMs
			if from == 0 {
				from = max(r.IssuedMs, r.RequestedMs)
			}
			if limit := from + t.MaxValiditySeconds*1000; r.ValidUntilMs == 0 || r.ValidUntilMs > limit {
				r.ValidUntilMs = limit
			}
		}
	})
	if err != nil {
		return err
	}
	switch r.State {
	case event.StateIssued, event.StatePendingActivation, event.StateActive, event.StateSuspended:
		locks := a.Locks.ForCredential(r.SiteID, r.DoorGroups)
		removed, added := diffLocks(cur.Locks, locks)
		r.Locks = locks
		a.setWeaker(r)
		if !sameWindows(cur.Windows, r.Windows) || cur.ValidUntilMs != r.ValidUntilMs {
			added = locks // the locks that keep it need the new windows or end too
		}
		if r.State == event.StateActive { // only an active credential is on locks
			a.lockCommands(b, r, gateway.CommandRevoke, removed, "")
			a.lockCommands(b, r, gateway.CommandGrant, added, "")
		}
	}
	return nil
}

// applyMoves replaces the credential's locks named by the command's moves
// (a vendor migration): the new locks are granted the credential, the old
// ones told to drop it. Only an active credential is on locks: a suspended
// or not yet activated one only changes its record (reinstating or
// activating grants the new locks); a credential holding none of the moved
// locks is left alone.
func (a Applier) applyMoves(b *Batch, c Command, cur *Record) error {
	to := map[LockRef]LockRef{}
	for _, m := range c.Moves {
		to[m.From] = m.To
	}
	var locks []LockRef
	moved := false
	for _, l := range cur.Locks {
		if n, ok := to[l]; ok {
			l, moved = n, true
		}
		if !slices.Contains(locks, l) {
			locks = append(locks, l)
		}
	}
	if !moved {
		return nil
	}
	r, err := a.step(b, cur, lifecycle.OpUpdate, c, func(r *Record) {
		r.Locks = locks
		a.setWeaker(r)
	})
	if err != nil {
		return err
	}
	if r.State == event.StateActive { // only an active credential is on locks
		removed, added := diffLocks(cur.Locks, r.Locks)
		a.lockCommands(b, r, gateway.CommandGrant, added, "")
		a.lockCommands(b, r, gateway.CommandRevoke, removed, "")
	}
	return nil
}

func sameWindows(a, b []Window) bool {
	return slices.EqualFunc(a, b, func(x, y Window) bool {
		return x.Start == y.Start && x.End == y.End && slices.Equal(x.Days, y.Days)
	})
}

func diffLocks(old, cur []LockRef) (removed, added []LockRef) {
	for _, l := range old {
		if !slices.Contains(cur, l) {
			removed = append(removed, l)
		}
	}
	for _, l := range cur {
		if !slices.Contains(old, l) {
			added = append(added, l)
		}
	}
	return removed, added
}

// lockCommands queues one command per lock and returns their ids.
func (a Applier) lockCommands(b *Batch, r *Record, typ string, locks []LockRef, revocationID string) []string {
	ids := make([]string, len(locks))
	for i, l := range locks {
		cmd := gateway.Command{CommandID: a.NewID(), Type: typ, Vendor: l.Vendor, LockID: l.LockID,
			CredentialID: r.CredentialID, SubjectID: r.SubjectID, UserRefHash: RefFor(r.Refs, l),
			RevocationID: revocationID, Seq: r.Seq, IssuedMs: b.Now, Attempt: 1, SentMs: b.Now}
		if typ == gateway.CommandGrant {
			// Only what the lock can enforce (the estate policy).
			carry := a.carry(r, l)
			cmd.ValidFromMs = r.ValidFromMs
			if carry.Windows {
				cmd.Windows = r.Windows
			}
			if carry.Expiry {
				cmd.ValidUntilMs = r.ValidUntilMs
			}
		}
		ids[i] = cmd.CommandID
		b.LockCommands = append(b.LockCommands, cmd)
	}
	return ids
}

// RefFor returns the credential's identity on a lock: a lock-specific
// reference wins over a vendor-wide one.
func RefFor(refs []event.CredentialRef, l LockRef) string {
	vendorWide := ""
	for _, r := range refs {
		if r.Vendor != l.Vendor {
			continue
		}
		if r.LockID == l.LockID {
			return r.UserRefHash
		}
		if r.LockID == "" {
			vendorWide = r.UserRefHash
		}
	}
	return vendorWide
}
