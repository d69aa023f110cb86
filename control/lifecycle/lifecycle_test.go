package lifecycle_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/event"
)

// TestWholeTransitionTable checks every op in every state (and on a
// credential that does not exist yet) against the table written out by hand.
func TestWholeTransitionTable(t *testing.T) {
	const (
		none = lifecycle.None
		req  = event.StateRequested
		appr = event.StateApproved
		iss  = event.StateIssued
		pend = event.StatePendingActivation
		act  = event.StateActive
		susp = event.StateSuspended
		rev  = event.StateRevoked
		arch = event.StateArchived
	)
	want := map[string]map[string]string{
		lifecycle.OpRequest:      {none: req},
		lifecycle.OpApprove:      {req: appr},
		lifecycle.OpAddApproval:  {req: req},
		lifecycle.OpIssue:        {appr: iss},
		lifecycle.OpDeliver:      {iss: pend},
		lifecycle.OpActivate:     {pend: act},
		lifecycle.OpSuspend:      {act: susp},
		lifecycle.OpReinstate:    {susp: act},
		lifecycle.OpDeviceChange: {act: pend, pend: pend},
		lifecycle.OpUpdate:       {req: req, appr: appr, iss: iss, pend: pend, act: act, susp: susp},
		lifecycle.OpRevoke:       {req: rev, appr: rev, iss: rev, pend: rev, act: rev, susp: rev},
		lifecycle.OpExpire:       {req: rev, appr: rev, iss: rev, pend: rev, act: rev, susp: rev},
		lifecycle.OpArchive:      {rev: arch},
	}
	require.ElementsMatch(t, lifecycle.Ops, keys(want), "every op is covered")
	states := append([]string{none}, event.States...)
	checked := 0
	for _, op := range lifecycle.Ops {
		for _, from := range states {
			got, err := lifecycle.Next(op, from)
			dst, legal := want[op][from]
			if legal {
				require.NoError(t, err, "%s in %q", op, from)
				assert.Equal(t, dst, got, "%s in %q", op, from)
			} else {
				var te *lifecycle.TransitionError
				require.ErrorAs(t, err, &te, "%s in %q must be illegal", op, from)
				assert.Equal(t, from, te.From)
				assert.Equal(t, op, te.Op)
				assert.NotEmpty(t, te.Allowed)
			}
			checked++
		}
	}
	assert.Equal(t, len(lifecycle.Ops)*9, checked)
}

func TestLifecycleReachesEveryState(t *testing.T) {
	path := []string{lifecycle.OpRequest, lifecycle.OpApprove, lifecycle.OpIssue, lifecycle.OpDeliver,
		lifecycle.OpActivate, lifecycle.OpSuspend, lifecycle.OpReinstate, lifecycle.OpRevoke, lifecycle.OpArchive}
	s := lifecycle.None
	seen := map[string]bool{}
	for _, op := range path {
		var err error
		s, err = lifecycle.Next(op, s)
		require.NoError(t, err, op)
		seen[s] = true
	}
	for _, st := range event.States {
		assert.True(t, seen[st], st)
	}
	_, err := lifecycle.Next("teleport", event.StateActive)
	assert.Error(t, err)
}

func keys(m map[string]map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
