package control

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/event"
)

// keypads is a test Enforcement: seam locks hold neither windows nor end
// dates.
type keypads struct{}

func (keypads) Carry(r *Record, l LockRef) Carry {
	if l.Vendor != "seam" {
		return Carry{Windows: true, Expiry: true}
	}
	w := &WeakerLock{Vendor: l.Vendor, LockID: l.LockID}
	if len(r.Windows) > 0 {
		w.Schedule = "detect_only"
	}
	if r.ValidUntilMs > 0 {
		w.Expiry, w.ExpiryLateS = "revocation", 3600
	}
	if w.Schedule == "" && w.Expiry == "" {
		w = nil
	}
	return Carry{Weaker: w}
}

func TestApplyCarriesWhatTheLockEnforces(t *testing.T) {
	n := 0
	a := Applier{Current: func(string) (*Record, bool) { return nil, false }, Locks: locks, Enforce: keypads{},
		NewID: func() string { n++; return fmt.Sprintf("lc-%d", n) }}
	spec := &Spec{SubjectID: "s1", Role: "contractor", DoorGroups: []string{"entrance", "service"}, ApprovalRule: ApprovalAuto,
		Windows: []Window{{Days: []string{"mon"}, Start: "07:00", End: "19:00"}}, ValidUntilMs: nowMs + 86_400_000,
		DeviceID: "d1", Attestation: attestation("d1")} // activated at once: the locks are told
	b := a.Apply(now, []Command{{CommandID: "c1", Op: lifecycle.OpRequest, CredentialID: "cr1", RequestID: "rq1", Actor: "mgr1", Spec: spec}})
	require.Len(t, b.LockCommands, 3)
	for _, c := range b.LockCommands {
		if c.Vendor == "seam" {
			assert.Empty(t, c.Windows, "the keypad lock gets no windows")
			assert.Zero(t, c.ValidUntilMs, "nor an end date")
		} else {
			assert.Equal(t, spec.Windows, c.Windows)
			assert.Equal(t, spec.ValidUntilMs, c.ValidUntilMs)
		}
	}
	last := b.Records[len(b.Records)-1]
	assert.Equal(t, []WeakerLock{{Vendor: "seam", LockID: "se-service", Schedule: "detect_only", Expiry: "revocation", ExpiryLateS: 3600}},
		last.Weaker, "the record says where enforcement is weaker")
}

func TestApplyMoves(t *testing.T) {
	move := []LockMove{{From: LockRef{"nuki", "n-side"}, To: LockRef{"matter", "m-side"}},
		{From: LockRef{"schlage", "s-garage"}, To: LockRef{"matter", "m-garage"}}}
	cases := []struct {
		name  string
		prior *Record
		want  summary
	}{{
		name:  "an active credential is granted on the new lock, then dropped from the old one",
		prior: record(event.StateActive),
		want: summary{
			Outcomes: []string{"update applied"},
			Records:  []string{"cr1#5 update active done"},
			Locks:    []string{"grant matter/m-side", "revoke nuki/n-side"},
		},
	}, {
		name:  "a credential not yet activated only changes its record: no lock holds it",
		prior: record(event.StatePendingActivation),
		want:  summary{Outcomes: []string{"update applied"}, Records: []string{"cr1#5 update pending_activation done"}},
	}, {
		name:  "a suspended credential only changes its record",
		prior: record(event.StateSuspended),
		want:  summary{Outcomes: []string{"update applied"}, Records: []string{"cr1#5 update suspended done"}},
	}, {
		name:  "a credential on none of the moved locks is left alone",
		prior: record(event.StateActive, func(r *Record) { r.Locks = []LockRef{{"matter", "m-lobby"}} }),
		want:  summary{Outcomes: []string{"update applied"}},
	}, {
		name:  "a revoked credential cannot move",
		prior: record(event.StateRevoked, func(r *Record) { r.Locks = []LockRef{{"nuki", "n-side"}} }),
		want:  summary{Outcomes: []string{"update rejected"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := Applier{Current: func(string) (*Record, bool) { return tc.prior, true }, Locks: locks,
				NewID: func() string { return "lc" }}
			b := a.Apply(now, []Command{{CommandID: "c9", Op: lifecycle.OpUpdate, CredentialID: "cr1", Actor: "admin", Moves: move}})
			assert.Equal(t, tc.want, summarize(b))
			if len(b.Records) > 0 {
				assert.True(t, slices.Contains(b.Records[0].Locks, LockRef{"matter", "m-side"}))
				assert.False(t, slices.Contains(b.Records[0].Locks, LockRef{"nuki", "n-side"}))
				assert.Equal(t, []LockRef{{"matter", "m-lobby"}, {"matter", "m-side"}}, b.Records[0].Locks)
			}
		})
	}
}
