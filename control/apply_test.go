package control

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

var (
	now   = time.UnixMilli(1_800_000_000_000)
	nowMs = now.UnixMilli()
)

// estate is the test lock index: six locks of one site in door groups.
type estate map[string][]LockRef

func (e estate) ForCredential(_ string, groups []string) []LockRef {
	var out []LockRef
	for _, g := range groups {
		for group, locks := range e {
			if g != "*" && g != group {
				continue
			}
			for _, l := range locks {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

var locks = estate{
	"entrance":   {{"matter", "m-lobby"}, {"nuki", "n-side"}},
	"garage":     {{"schlage", "s-garage"}},
	"amenity":    {{"matter", "m-gym"}},
	"service":    {{"seam", "se-service"}},
	"unit:B-204": {{"matter", "m-b204"}},
}

// summary is what a test compares of a Batch: one line per record, lock
// command, item, revocation row ...
type summary struct {
	Outcomes    []string
	Records     []string // credential#seq op state ["done"]
	Locks       []string // type vendor/lock [revocation]
	Items       []string // request/item status [detail] [error]
	Revocations []string // revocation/credential scope locks=N [device]
	RevLocks    []string // revocation/credential vendor/lock command
	Track       []string // revocation/credential scope locks
	NoLocks     []string
	Sessions    []string // credential device
	Issued      []string
	Acks        int
	Activations int
}

func summarize(b *Batch) summary {
	var s summary
	for _, o := range b.Outcomes {
		s.Outcomes = append(s.Outcomes, o.Op+" "+o.Outcome)
	}
	for _, r := range b.Records {
		line := fmt.Sprintf("%s#%d %s %s", r.CredentialID, r.Seq, r.Op, r.State)
		if r.CommandDone {
			line += " done"
		}
		s.Records = append(s.Records, line)
	}
	for _, c := range b.LockCommands {
		s.Locks = append(s.Locks, join(c.Type, c.Vendor+"/"+c.LockID, c.RevocationID))
	}
	for _, it := range b.Items {
		s.Items = append(s.Items, join(fmt.Sprintf("%s/%d %s", it.RequestID, it.Item, it.Status), it.Detail, it.Error))
	}
	for _, r := range b.Revocations {
		s.Revocations = append(s.Revocations, join(fmt.Sprintf("%s/%s %s locks=%d", r.RevocationID, r.CredentialID,
			r.Scope, r.Locks), r.DeviceID))
	}
	for _, l := range b.RevocationLocks {
		s.RevLocks = append(s.RevLocks, fmt.Sprintf("%s/%s %s/%s %s", l.RevocationID, l.CredentialID, l.Vendor, l.LockID, l.CommandID))
	}
	for _, t := range b.Track {
		s.Track = append(s.Track, fmt.Sprintf("%s/%s %s %v", t.RevocationID, t.CredentialID, t.Scope, t.Locks))
	}
	for _, r := range b.NoLocks {
		s.NoLocks = append(s.NoLocks, r.RevocationID+"/"+r.CredentialID)
	}
	for _, x := range b.Sessions {
		s.Sessions = append(s.Sessions, join(x.CredentialID, x.DeviceID))
	}
	for _, r := range b.Issued {
		s.Issued = append(s.Issued, r.CredentialID)
	}
	s.Acks, s.Activations = len(b.Acks), b.Activations
	return s
}

func join(parts ...string) string {
	out := parts[0]
	for _, p := range parts[1:] {
		if p != "" {
			out += " " + p
		}
	}
	return out
}

func lockCmds(typ, revocation string, locks ...string) []string {
	out := make([]string, len(locks))
	for i, l := range locks {
		out[i] = join(typ, l, revocation)
	}
	return out
}

var residentLocks = []string{"matter/m-b204", "matter/m-gym", "matter/m-lobby", "nuki/n-side", "schlage/s-garage"}

func attestation(device string) *Attestation {
	return &Attestation{Format: "apple_app_attest", DeviceID: device, EvidenceSHA256: "00", VerifiedMs: nowMs - 1000,
		KeySHA256: "k-" + device, SecurityLevel: "secure_enclave", AppID: "T.app", Type: "full"}
}

func residentSpec() *Spec {
	return &Spec{SubjectID: "s1", Role: "resident", DoorGroups: []string{"amenity", "entrance", "garage", "unit:B-204"},
		ExtraGroups: []string{"unit:B-204"}, DeviceID: "d1", Attestation: attestation("d1"), ApprovalRule: ApprovalAuto,
		Refs: []event.CredentialRef{{Vendor: "matter", UserRefHash: "h-matter"}}}
}

// record is a credential as earlier batches left it.
func record(state string, change ...func(r *Record)) *Record {
	r := &Record{Credential: event.Credential{CredentialID: "cr1", SubjectID: "s1", Role: "contractor", State: state,
		DeviceID: "d1"}, Seq: 4, RequestID: "rq1", Issuer: "mgr1", ApprovalRule: ApprovalOne,
		DoorGroups: []string{"entrance", "service"}, Recent: []string{"c1"}}
	if lifecycle.IsLive(state) && state != event.StateRequested {
		r.IssuedMs = nowMs - 60_000
		r.Locks = []LockRef{{"matter", "m-lobby"}, {"nuki", "n-side"}}
	}
	for _, f := range change {
		f(r)
	}
	return r
}

func TestApply(t *testing.T) {
	transition := func(op, from string) string {
		_, err := lifecycle.Next(op, from)
		require.Error(t, err)
		return err.Error()
	}
	cases := []struct {
		name  string
		prior []*Record
		cmds  []Command
		want  summary
		check func(t *testing.T, b *Batch)
	}{{
		name: "an auto-approved attested request goes to active and every lock is granted",
		cmds: []Command{{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1",
			TsMs: nowMs - 1000, Spec: residentSpec()}},
		want: summary{
			Outcomes: []string{"request applied"},
			Records: []string{"cr1#1 request requested", "cr1#2 approve approved", "cr1#3 issue issued",
				"cr1#4 deliver pending_activation", "cr1#5 activate active done"},
			Locks:  lockCmds("grant", "", residentLocks...),
			Items:  []string{"rq1/0 issued state=active"},
			Issued: []string{"cr1"}, Activations: 1,
		},
		check: func(t *testing.T, b *Batch) {
			r := b.Records[4]
			assert.Equal(t, "mgr1", r.Issuer)
			assert.Equal(t, nowMs-1000, r.RequestedMs)
			assert.Equal(t, nowMs, r.IssuedMs)
			assert.True(t, r.Attested)
			assert.Equal(t, []string{"c1"}, r.Recent)
			assert.Equal(t, "h-matter", b.LockCommands[0].UserRefHash, "vendor-wide reference")
			assert.Empty(t, b.LockCommands[3].UserRefHash, "no reference on nuki")
			assert.Equal(t, "s1", b.LockCommands[0].SubjectID)
		},
	}, {
		name: "a request that needs an approval waits for it",
		cmds: []Command{{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1",
			Spec: &Spec{SubjectID: "s1", Role: "contractor", DoorGroups: []string{"entrance", "service"}, ApprovalRule: ApprovalOne}}},
		want: summary{
			Outcomes: []string{"request applied"},
			Records:  []string{"cr1#1 request requested done"},
			Items:    []string{"rq1/0 pending awaiting approval (0 of 1)"},
		},
	}, {
		name:  "the requester may not approve",
		prior: []*Record{record(event.StateRequested, func(r *Record) { r.Seq = 1 })},
		cmds:  []Command{{CommandID: "c2", Op: lifecycle.OpApprove, CredentialID: "cr1", RequestID: "rq2", Actor: "mgr1"}},
		want: summary{
			Outcomes: []string{"approve rejected"},
			Items:    []string{"rq2/0 failed " + ErrSelfApproval.Error()},
		},
	}, {
		name:  "the last approval issues and completes the request's item too",
		prior: []*Record{record(event.StateRequested, func(r *Record) { r.Seq = 1; r.DeviceID = "" })},
		cmds:  []Command{{CommandID: "c2", Op: lifecycle.OpApprove, CredentialID: "cr1", RequestID: "rq2", Actor: "mgr2"}},
		want: summary{
			Outcomes: []string{"approve applied"},
			Records:  []string{"cr1#2 approve approved", "cr1#3 issue issued", "cr1#4 deliver pending_activation done"},
			Items:    []string{"rq1/0 issued state=pending_activation", "rq2/0 applied state=pending_activation"},
			Issued:   []string{"cr1"},
		},
		check: func(t *testing.T, b *Batch) {
			assert.Equal(t, []string{"mgr2"}, b.Records[2].Approvers)
			assert.Equal(t, []LockRef{{"matter", "m-lobby"}, {"nuki", "n-side"}, {"seam", "se-service"}}, b.Records[2].Locks,
				"the locks it will be on once active; none is told before")
		},
	}, {
		name:  "a second approval by the same approver is refused",
		prior: []*Record{record(event.StateRequested, func(r *Record) { r.ApprovalRule = ApprovalTwo; r.Approvers = []string{"mgr2"} })},
		cmds:  []Command{{CommandID: "c2", Op: lifecycle.OpApprove, CredentialID: "cr1", Actor: "mgr2"}},
		want:  summary{Outcomes: []string{"approve rejected"}},
	}, {
		name:  "a re-delivered command is a duplicate",
		prior: []*Record{record(event.StateRequested)},
		cmds:  []Command{{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1"}},
		want: summary{
			Outcomes: []string{"request duplicate"},
			Items:    []string{"rq1/0 pending awaiting approval (0 of 1)"},
		},
	}, {
		name:  "the same request under another command id is a no-op, another request is refused",
		prior: []*Record{record(event.StateRequested)},
		cmds: []Command{
			{CommandID: "c1b", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1", Spec: residentSpec()},
			{CommandID: "c9", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq9", Item: 3, Actor: "mgr1", Spec: residentSpec()},
		},
		want: summary{
			Outcomes: []string{"request applied", "request rejected"},
			Items:    []string{"rq1/0 pending awaiting approval (0 of 1)", "rq9/3 failed " + ErrExists.Error()},
		},
	}, {
		name:  "a revocation reaches every lock holding the credential and its device session",
		prior: []*Record{record(event.StateActive)},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpRevoke, CredentialID: "cr1", RequestID: "rq3", Item: 2,
			Actor: "mgr1", TsMs: nowMs - 500, RevocationID: "rv1", Scope: ScopeSubject}},
		want: summary{
			Outcomes:    []string{"revoke applied"},
			Records:     []string{"cr1#5 revoke revoked done"},
			Locks:       lockCmds("revoke", "rv1", "matter/m-lobby", "nuki/n-side"),
			Items:       []string{"rq3/2 applied state=revoked"},
			Revocations: []string{"rv1/cr1 subject locks=2 d1"},
			RevLocks:    []string{"rv1/cr1 matter/m-lobby lc-1", "rv1/cr1 nuki/n-side lc-2"},
			Track:       []string{"rv1/cr1 subject [matter/m-lobby nuki/n-side]"},
			Sessions:    []string{"cr1 d1"},
		},
		check: func(t *testing.T, b *Batch) {
			assert.Equal(t, nowMs-500, b.Revocations[0].RequestedMs)
			assert.Equal(t, nowMs-500, b.Track[0].RequestedMs)
			assert.Equal(t, "rv1", b.Records[0].RevocationID)
			assert.Equal(t, Session{Key: "rv1/cr1", RevocationID: "rv1", CredentialID: "cr1", SubjectID: "s1", DeviceID: "d1",
				Scope: ScopeSubject, RequestedMs: nowMs - 500}, b.Sessions[0])
			for _, c := range b.LockCommands {
				assert.Equal(t, uint64(5), c.Seq, "the record's seq orders the credential's commands at the lock")
				assert.Equal(t, 1, c.Attempt)
			}
		},
	}, {
		name: "a re-delivered revocation queues its effects again",
		prior: []*Record{record(event.StateRevoked, func(r *Record) {
			r.IssuedMs, r.Locks = nowMs-60_000, []LockRef{{"matter", "m-lobby"}, {"nuki", "n-side"}}
			r.RevocationID, r.SessionRevokedDevice, r.Recent = "rv1", "d1", []string{"c1", "c9"}
		})},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpRevoke, CredentialID: "cr1", Actor: "mgr1", TsMs: nowMs - 500,
			RevocationID: "rv1"}},
		want: summary{
			Outcomes:    []string{"revoke duplicate"},
			Locks:       lockCmds("revoke", "rv1", "matter/m-lobby", "nuki/n-side"),
			Revocations: []string{"rv1/cr1 credential locks=2 d1"},
			RevLocks:    []string{"rv1/cr1 matter/m-lobby lc-1", "rv1/cr1 nuki/n-side lc-2"},
			Track:       []string{"rv1/cr1 credential [matter/m-lobby nuki/n-side]"},
			Sessions:    []string{"cr1 d1"},
		},
	}, {
		name:  "a revocation no lock holds is done once disabled",
		prior: []*Record{record(event.StateRequested, func(r *Record) { r.DeviceID = "" })},
		cmds:  []Command{{CommandID: "c9", Op: lifecycle.OpRevoke, CredentialID: "cr1", Actor: "mgr1", RevocationID: "rv2"}},
		want: summary{
			Outcomes:    []string{"revoke applied"},
			Records:     []string{"cr1#5 revoke revoked done"},
			Revocations: []string{"rv2/cr1 credential locks=0"},
			NoLocks:     []string{"rv2/cr1"},
			Sessions:    []string{"cr1"},
		},
		check: func(t *testing.T, b *Batch) { assert.Equal(t, nowMs, b.NoLocks[0].RequestedMs, "no request time: now") },
	}, {
		name:  "an expiry before valid_until is refused",
		prior: []*Record{record(event.StateActive, func(r *Record) { r.ValidUntilMs = nowMs + 1 })},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpExpire, CredentialID: "cr1", Actor: "system", RequestID: "rq4",
			RevocationID: "rv3", Scope: ScopeExpiry}},
		want: summary{
			Outcomes: []string{"expire rejected"},
			Items:    []string{"rq4/0 failed not expired: valid_until is in the future"},
		},
	}, {
		name:  "an expired credential is revoked with scope expiry",
		prior: []*Record{record(event.StateActive, func(r *Record) { r.ValidUntilMs = nowMs; r.DeviceID = "" })},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpExpire, CredentialID: "cr1", Actor: "system", TsMs: nowMs,
			RevocationID: "rv3", Scope: ScopeExpiry}},
		want: summary{
			Outcomes:    []string{"expire applied"},
			Records:     []string{"cr1#5 expire revoked done"},
			Locks:       lockCmds("revoke", "rv3", "matter/m-lobby", "nuki/n-side"),
			Revocations: []string{"rv3/cr1 expiry locks=2"},
			RevLocks:    []string{"rv3/cr1 matter/m-lobby lc-1", "rv3/cr1 nuki/n-side lc-2"},
			Track:       []string{"rv3/cr1 expiry [matter/m-lobby nuki/n-side]"},
			Sessions:    []string{"cr1"},
		},
	}, {
		name:  "an illegal transition names the current state",
		prior: []*Record{record(event.StatePendingActivation)},
		cmds:  []Command{{CommandID: "c9", Op: lifecycle.OpSuspend, CredentialID: "cr1", RequestID: "rq4"}},
		want: summary{
			Outcomes: []string{"suspend rejected"},
			Items: []string{"rq4/0 failed current_state=pending_activation " +
				transition(lifecycle.OpSuspend, event.StatePendingActivation)},
		},
	}, {
		name:  "an unknown credential or op is refused",
		prior: []*Record{record(event.StateActive)},
		cmds: []Command{
			{CommandID: "c8", Op: lifecycle.OpSuspend, CredentialID: "nobody", RequestID: "rq5"},
			{CommandID: "c9", Op: "bogus", CredentialID: "cr1", RequestID: "rq5", Item: 1},
		},
		want: summary{
			Outcomes: []string{"suspend rejected", "bogus rejected"},
			Items:    []string{"rq5/0 failed " + ErrNotFound.Error(), `rq5/1 failed unknown op "bogus"`},
		},
	}, {
		name:  "activation evidence for another device is refused",
		prior: []*Record{record(event.StatePendingActivation)},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpActivate, CredentialID: "cr1", DeviceID: "d2",
			Attestation: attestation("d2")}},
		want: summary{Outcomes: []string{"activate rejected"}},
	}, {
		name:  "a device change revokes the old session and the locks, and activates with fresh evidence",
		prior: []*Record{record(event.StateActive)},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpDeviceChange, CredentialID: "cr1", DeviceID: "d2",
			Attestation: attestation("d2")}},
		want: summary{
			Outcomes: []string{"device_change applied"},
			Records:  []string{"cr1#5 device_change pending_activation", "cr1#6 activate active done"},
			Locks: slices.Concat(lockCmds("revoke", "", "matter/m-lobby", "nuki/n-side"),
				lockCmds("grant", "", "matter/m-lobby", "nuki/n-side")),
			Sessions:    []string{"cr1 d1"},
			Activations: 1,
		},
		check: func(t *testing.T, b *Batch) {
			assert.Equal(t, "d1", b.Records[0].SessionRevokedDevice)
			assert.Empty(t, b.Records[1].SessionRevokedDevice, "each record says what it revoked")
			assert.Equal(t, "d2", b.Records[1].DeviceID)
			assert.True(t, b.Records[1].Attested)
		},
	}, {
		name: "commands of one credential build on each other; a failed one leaves nothing behind",
		cmds: []Command{
			{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1", Spec: residentSpec()},
			{CommandID: "c2", Op: lifecycle.OpSuspend, CredentialID: "cr1", Actor: "responder"},
			{CommandID: "c3", Op: lifecycle.OpArchive, CredentialID: "cr1", Actor: "mgr1"},
			{CommandID: "c4", Op: lifecycle.OpReinstate, CredentialID: "cr1", Actor: "mgr1"},
			{CommandID: "c5", Op: OpAck, CredentialID: "cr1", Ack: &gateway.Ack{CommandID: "lc-1", Status: gateway.AckApplied}},
		},
		want: summary{
			Outcomes: []string{"request applied", "suspend applied", "archive rejected", "reinstate applied", "ack applied"},
			Records: []string{"cr1#1 request requested", "cr1#2 approve approved", "cr1#3 issue issued",
				"cr1#4 deliver pending_activation", "cr1#5 activate active done", "cr1#6 suspend suspended done",
				"cr1#7 reinstate active done"},
			Locks: slices.Concat(lockCmds("grant", "", residentLocks...), lockCmds("revoke", "", residentLocks...),
				lockCmds("grant", "", residentLocks...)),
			Items:  []string{"rq1/0 issued state=active"},
			Issued: []string{"cr1"}, Acks: 1, Activations: 1,
		},
		check: func(t *testing.T, b *Batch) {
			assert.Equal(t, []string{"c1", "c2", "c4"}, b.Records[6].Recent)
			assert.Equal(t, "responder", b.Records[5].Actor)
		},
	}, {
		name: "a template update moves the credential's locks and tells the kept ones the new windows",
		prior: []*Record{record(event.StateActive, func(r *Record) {
			r.Role, r.DoorGroups, r.ExtraGroups = "resident", []string{"amenity", "entrance", "garage", "unit:B-204"}, []string{"unit:B-204"}
			r.Locks = []LockRef{{"matter", "m-b204"}, {"matter", "m-gym"}, {"matter", "m-lobby"}, {"nuki", "n-side"}, {"schlage", "s-garage"}}
			r.RequestedMs = nowMs - 90_000
		})},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpUpdate, CredentialID: "cr1", Actor: "mgr1", Template: &Template{
			Role: "resident", DoorGroups: []string{"entrance", "amenity"}, ExtraGroupPrefix: []string{"unit:"},
			Windows: []Window{{Start: "06:00", End: "23:00"}}, MaxValiditySeconds: 3600, Approval: ApprovalAuto, Version: 7}}},
		want: summary{
			Outcomes: []string{"update applied"},
			Records:  []string{"cr1#5 update active done"},
			Locks: slices.Concat(lockCmds("revoke", "", "schlage/s-garage"),
				lockCmds("grant", "", "matter/m-b204", "matter/m-gym", "matter/m-lobby", "nuki/n-side")),
		},
		check: func(t *testing.T, b *Batch) {
			r := b.Records[0]
			assert.Equal(t, []string{"amenity", "entrance", "unit:B-204"}, r.DoorGroups)
			assert.False(t, r.Exception, "unit: is allowed by the template")
			assert.Equal(t, uint64(7), r.TemplateVersion)
			assert.Equal(t, nowMs-60_000+3600_000, r.ValidUntilMs, "max validity from the issue")
			assert.Equal(t, r.ValidUntilMs, b.LockCommands[1].ValidUntilMs)
			assert.Equal(t, r.Windows, b.LockCommands[1].Windows)
		},
	}, {
		name: "a template update of a pending credential tells no lock",
		prior: []*Record{record(event.StatePendingActivation, func(r *Record) {
			r.Role, r.DoorGroups = "resident", []string{"entrance"}
		})},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpUpdate, CredentialID: "cr1", Actor: "mgr1", Template: &Template{
			Role: "resident", DoorGroups: []string{"entrance", "garage"}, Approval: ApprovalAuto, Version: 7}}},
		want: summary{
			Outcomes: []string{"update applied"},
			Records:  []string{"cr1#5 update pending_activation done"},
		},
		check: func(t *testing.T, b *Batch) {
			assert.Equal(t, []LockRef{{"matter", "m-lobby"}, {"nuki", "n-side"}, {"schlage", "s-garage"}}, b.Records[0].Locks)
		},
	}, {
		name: "activation grants the credential on its locks",
		prior: []*Record{record(event.StatePendingActivation, func(r *Record) {
			r.Refs = []event.CredentialRef{{Vendor: "nuki", LockID: "n-side", UserRefHash: "h-n"}}
		})},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpActivate, CredentialID: "cr1", DeviceID: "d1",
			Attestation: attestation("d1")}},
		want: summary{
			Outcomes:    []string{"activate applied"},
			Records:     []string{"cr1#5 activate active done"},
			Locks:       lockCmds("grant", "", "matter/m-lobby", "nuki/n-side"),
			Activations: 1,
		},
		check: func(t *testing.T, b *Batch) {
			assert.True(t, b.Records[0].Attested)
			assert.Equal(t, "h-n", b.LockCommands[1].UserRefHash)
			assert.Equal(t, uint64(5), b.LockCommands[1].Seq)
		},
	}, {
		name:  "evidence without a verified key does not make the credential attested",
		prior: []*Record{record(event.StatePendingActivation)},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpActivate, CredentialID: "cr1", DeviceID: "d1",
			Attestation: &Attestation{Format: "aliro", DeviceID: "d1", EvidenceSHA256: "00"}}},
		want: summary{
			Outcomes:    []string{"activate applied"},
			Records:     []string{"cr1#5 activate active done"},
			Locks:       lockCmds("grant", "", "matter/m-lobby", "nuki/n-side"),
			Activations: 1,
		},
		check: func(t *testing.T, b *Batch) { assert.False(t, b.Records[0].Attested) },
	}, {
		name: "a second live credential for the same subject, role and device is refused unless allowed",
		prior: []*Record{record(event.StateActive, func(r *Record) {
			r.CredentialID, r.Role, r.DeviceID = "cr0", "resident", "d1"
		})},
		cmds: []Command{
			{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1", Spec: residentSpec()},
			{CommandID: "c2", Op: lifecycle.OpRequest, CredentialID: "cr2", RequestID: "rq1", Item: 1, Actor: "mgr1",
				Spec: func() *Spec { s := residentSpec(); s.AllowAdditional = true; return s }()},
			{CommandID: "c3", Op: lifecycle.OpRequest, CredentialID: "cr3", RequestID: "rq1", Item: 2, Actor: "mgr1",
				Spec: func() *Spec { s := residentSpec(); s.DeviceID, s.Attestation = "d9", nil; return s }()},
			{CommandID: "c4", Op: lifecycle.OpRequest, CredentialID: "cr4", RequestID: "rq1", Item: 3, Actor: "mgr1",
				Spec: func() *Spec { s := residentSpec(); s.DeviceID, s.Attestation = "d9", nil; return s }()},
		},
		want: summary{
			Outcomes: []string{"request rejected", "request applied", "request applied", "request rejected"},
			Records: []string{"cr2#1 request requested", "cr2#2 approve approved", "cr2#3 issue issued",
				"cr2#4 deliver pending_activation", "cr2#5 activate active done",
				"cr3#1 request requested", "cr3#2 approve approved", "cr3#3 issue issued", "cr3#4 deliver pending_activation done"},
			Locks: lockCmds("grant", "", residentLocks...),
			Items: []string{"rq1/0 failed " + (&DuplicateError{Existing: "cr0"}).Error(), "rq1/1 issued state=active",
				"rq1/2 issued state=pending_activation", "rq1/3 failed " + (&DuplicateError{Existing: "cr3"}).Error()},
			Issued: []string{"cr2", "cr3"}, Activations: 1,
		},
	}, {
		name:  "an update to an older template version changes nothing",
		prior: []*Record{record(event.StateActive, func(r *Record) { r.TemplateVersion = 9 })},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpUpdate, CredentialID: "cr1",
			Template: &Template{Role: "contractor", DoorGroups: []string{"*"}, Version: 9}}},
		want: summary{Outcomes: []string{"update applied"}},
	}, {
		name: "break-glass access is timed from its issue",
		prior: []*Record{record(event.StateRequested, func(r *Record) {
			r.Role, r.DoorGroups, r.ApprovalRule, r.Approvers = "emergency_responder", []string{"*"}, ApprovalTwo, []string{"mgr2"}
			r.BreakGlass, r.BreakGlassMs, r.Attestation = true, 2000, attestation("d1")
		})},
		cmds: []Command{{CommandID: "c9", Op: lifecycle.OpApprove, CredentialID: "cr1", Actor: "mgr3"}},
		want: summary{
			Outcomes: []string{"approve applied"},
			Records: []string{"cr1#5 approve approved", "cr1#6 issue issued", "cr1#7 deliver pending_activation",
				"cr1#8 activate active done"},
			Locks:  lockCmds("grant", "", "matter/m-b204", "matter/m-gym", "matter/m-lobby", "nuki/n-side", "schlage/s-garage", "seam/se-service"),
			Items:  []string{"rq1/0 issued state=pending_activation"},
			Issued: []string{"cr1"}, Activations: 1,
		},
		check: func(t *testing.T, b *Batch) {
			r := b.Records[3]
			assert.Equal(t, []int64{nowMs, nowMs + 2000}, []int64{r.ValidFromMs, r.ValidUntilMs})
			assert.Equal(t, nowMs+2000, b.LockCommands[0].ValidUntilMs)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prior := map[string]*Record{}
			for _, r := range tc.prior {
				prior[r.CredentialID] = r
			}
			before := map[string]*Record{}
			for id, r := range prior {
				before[id] = r.Clone()
			}
			n := 0
			a := Applier{
				Current: func(id string) (*Record, bool) { r, ok := prior[id]; return r, ok },
				Live: func(subject string) []*Record {
					var out []*Record
					for _, r := range prior {
						if r.SubjectID == subject {
							out = append(out, r)
						}
					}
					return out
				},
				Locks: locks,
				NewID: func() string { n++; return fmt.Sprintf("lc-%d", n) },
			}
			b := a.Apply(now, tc.cmds)
			assert.Equal(t, tc.want, summarize(b))
			assert.Equal(t, before, prior, "the current records are not changed")
			for _, r := range b.Records {
				assert.Equal(t, nowMs, r.TsMs)
			}
			if tc.check != nil {
				tc.check(t, b)
			}
		})
	}
}

func TestRefForAndDiff(t *testing.T) {
	refs := []event.CredentialRef{{Vendor: "matter", UserRefHash: "wide"}, {Vendor: "matter", LockID: "m2", UserRefHash: "m2-only"}}
	assert.Equal(t, "m2-only", RefFor(refs, LockRef{"matter", "m2"}))
	assert.Equal(t, "wide", RefFor(refs, LockRef{"matter", "m1"}))
	assert.Equal(t, "", RefFor(refs, LockRef{"nuki", "n1"}))
	removed, added := diffLocks([]LockRef{{"a", "1"}, {"a", "2"}}, []LockRef{{"a", "2"}, {"a", "3"}})
	assert.Equal(t, []LockRef{{"a", "1"}}, removed)
	assert.Equal(t, []LockRef{{"a", "3"}}, added)
}

func TestItemFor(t *testing.T) {
	req := Command{Op: lifecycle.OpRequest, RequestID: "rq", Item: 1, CredentialID: "cr"}
	f := func(name string, c Command, r *Record, err error, want ItemRow) {
		t.Run(name, func(t *testing.T) {
			want.RequestID, want.Item, want.CredentialID = c.RequestID, c.Item, c.CredentialID
			assert.Equal(t, want, ItemFor(c, r, err))
		})
	}
	f("queued", req, nil, nil, ItemRow{Status: StatusPending})
	f("awaiting two", req, &Record{Credential: event.Credential{State: event.StateRequested}, ApprovalRule: ApprovalTwo,
		Approvers: []string{"a"}}, nil, ItemRow{Status: StatusPending, Detail: "awaiting approval (1 of 2)"})
	f("issued", req, &Record{Credential: event.Credential{State: event.StateActive}}, nil,
		ItemRow{Status: StatusIssued, Detail: "state=active"})
	f("revoked after issue", req, &Record{Credential: event.Credential{State: event.StateRevoked}, IssuedMs: 1}, nil,
		ItemRow{Status: StatusIssued, Detail: "state=revoked"})
	f("revoked before issue", req, &Record{Credential: event.Credential{State: event.StateArchived}}, nil,
		ItemRow{Status: StatusFailed, Error: "revoked before it was issued", Detail: "state=archived"})
	f("other op", Command{Op: lifecycle.OpSuspend, RequestID: "rq"}, &Record{Credential: event.Credential{State: event.StateSuspended}},
		nil, ItemRow{Status: StatusApplied, Detail: "state=suspended"})
	f("failed", req, nil, ErrExists, ItemRow{Status: StatusFailed, Error: ErrExists.Error()})
}
