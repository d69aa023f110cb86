package recert_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/recert"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).UnixMilli()

const day = int64(24 * time.Hour / time.Millisecond)

func TestCampaignRules(t *testing.T) {
	c := recert.Campaign{ID: "rc1", SiteID: "s1", CreatedMs: t0, DeadlineMs: t0 + 14*day, OnDeadline: recert.OnDeadlineSuspend}
	require.NoError(t, c.Validate(t0))
	bad := c
	bad.DeadlineMs = t0 + 60_000
	assert.ErrorContains(t, bad.Validate(t0), "deadline_ms")
	bad = c
	bad.SiteID, bad.OnDeadline = "", "delete"
	err := bad.Validate(t0)
	assert.ErrorContains(t, err, "site_id")
	assert.ErrorContains(t, err, `on_deadline "delete"`)

	assert.Equal(t, recert.StatusOpen, c.StatusAt(t0))
	assert.Equal(t, recert.StatusOverdue, c.StatusAt(t0+14*day))
	closed := c
	closed.ClosedMs = t0 + 14*day
	assert.Equal(t, recert.StatusClosed, closed.StatusAt(t0+15*day))

	it := recert.Item{CredentialID: "c1"}
	require.NoError(t, recert.CheckDecision(c, it, recert.Confirmed))
	assert.ErrorContains(t, recert.CheckDecision(c, it, recert.Suspended), "want confirmed or revoked")
	assert.ErrorIs(t, recert.CheckDecision(closed, it, recert.Revoked), recert.ErrClosed)
	it.Decision, it.DecidedBy = recert.Confirmed, "mgr"
	assert.ErrorIs(t, recert.CheckDecision(c, it, recert.Revoked), recert.ErrDecided)

	items := []recert.Item{{CredentialID: "a", Decision: recert.Confirmed}, {CredentialID: "b"}, {CredentialID: "c", Decision: recert.Revoked},
		{CredentialID: "d"}, {CredentialID: "e", Decision: recert.Suspended}}
	assert.Equal(t, recert.Counts{Items: 5, Pending: 2, Confirmed: 1, Revoked: 1, Suspended: 1}, recert.Count(items))
	assert.Equal(t, []recert.Item{{CredentialID: "b"}, {CredentialID: "d"}}, recert.Undecided(items))
}
