package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/recert"
	"github.com/keyfleet/keyfleet/recert/api"
)

// plane is the control plane's state as the recertification sees it: a
// fixed set of records and the commands published (the service test runs
// the real one; this one holds time still for the deadline).
type plane struct {
	mu   sync.Mutex
	recs map[string]*control.Record
	cmds []control.Command
}

func (p *plane) Ready() <-chan struct{} { c := make(chan struct{}); close(c); return c }
func (p *plane) Record(id string) (*control.Record, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.recs[id]
	return r, ok
}
func (p *plane) Each(fn func(r *control.Record)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.recs {
		fn(r)
	}
}
func (p *plane) Publish(_ context.Context, cmds ...control.Command) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, cmds...)
	return nil
}

type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (a *memAudit) Append(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *memAudit) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		out = append(out, e.Action+" "+e.Target)
	}
	return out
}

type principals map[string]httpapi.Principal

func (p principals) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	pr, ok := p[token]
	if !ok {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	return pr, nil
}

// A campaign reviews the site's live credentials; reviewers confirm and
// revoke (a revoke command to the control plane); a scoped manager of
// another site sees nothing of it; at the deadline the undecided active
// credential is suspended, the undecided pending one lapses, all audited,
// and the campaign is closed to further decisions.
func TestCampaign(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	require.NoError(t, chstorage.Migrate(ctx, conn, testenv.Logger(t)))
	rec := func(id, site, state string) *control.Record {
		return &control.Record{Credential: event.Credential{CredentialID: id, SubjectID: "subj-" + id, Role: "resident", SiteID: site,
			State: state}, DoorGroups: []string{"entrance"}}
	}
	cp := &plane{recs: map[string]*control.Record{
		"c1": rec("c1", "s1", event.StateActive), "c2": rec("c2", "s1", event.StateActive), "c3": rec("c3", "s1", event.StateActive),
		"c4": rec("c4", "s1", event.StatePendingActivation), "c5": rec("c5", "s1", event.StateRevoked), "c6": rec("c6", "s2", event.StateActive),
	}}
	log := &memAudit{}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a, err := api.New(api.Options{Credentials: cp, Conn: conn, Audit: log, Now: func() time.Time { return now }})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: principals{
		"m1": {Name: "mgr-s1", Role: httpapi.RoleManager, Sites: []string{"s1"}},
		"m2": {Name: "mgr-s2", Role: httpapi.RoleManager, Sites: []string{"s2"}},
		"an": {Name: "analyst", Role: httpapi.RoleAnalyst},
	}}, a.Routes())
	require.NoError(t, err)
	call := func(token, method, path, body string, out any) int {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			require.NoError(t, json.Unmarshal(b, out), string(b))
		}
		return resp.StatusCode
	}
	deadline := now.Add(14 * 24 * time.Hour)
	var camp api.CampaignView
	assert.Equal(t, 403, call("m2", "POST", "/v1/recertifications", fmt.Sprintf(`{"site_id":"s1","deadline_ms":%d}`, deadline.UnixMilli()), nil))
	assert.Equal(t, 403, call("an", "POST", "/v1/recertifications", fmt.Sprintf(`{"site_id":"s1","deadline_ms":%d}`, deadline.UnixMilli()), nil))
	assert.Equal(t, 400, call("m1", "POST", "/v1/recertifications", fmt.Sprintf(`{"site_id":"s1","deadline_ms":%d}`, now.Add(time.Minute).UnixMilli()), nil))
	require.Equal(t, 201, call("m1", "POST", "/v1/recertifications", fmt.Sprintf(`{"site_id":"s1","deadline_ms":%d}`, deadline.UnixMilli()), &camp))
	assert.Equal(t, recert.Counts{Items: 4, Pending: 4}, camp.Counts, "the site's live credentials: c1..c4")
	assert.Equal(t, recert.OnDeadlineSuspend, camp.OnDeadline)

	decide := func(token, cred, decision string) int {
		return call(token, "POST", "/v1/recertifications/"+camp.ID+":decide", fmt.Sprintf(`{"credential_id":%q,"decision":%q,"note":"n"}`, cred, decision), nil)
	}
	assert.Equal(t, 404, decide("m2", "c1", recert.Confirmed), "another site's campaign does not exist for m2")
	assert.Equal(t, 200, decide("m1", "c1", recert.Confirmed))
	assert.Equal(t, 409, decide("m1", "c1", recert.Revoked), "a decision is final")
	assert.Equal(t, 200, decide("m1", "c2", recert.Revoked))
	assert.Equal(t, 404, decide("m1", "c6", recert.Confirmed), "not under review")
	require.Len(t, cp.cmds, 1)
	assert.Equal(t, lifecycle.OpRevoke, cp.cmds[0].Op)
	assert.Equal(t, "c2", cp.cmds[0].CredentialID)
	assert.NotEmpty(t, cp.cmds[0].RevocationID)

	var list struct {
		Campaigns []api.CampaignView `json:"campaigns"`
	}
	require.Equal(t, 200, call("m2", "GET", "/v1/recertifications", "", &list))
	assert.Empty(t, list.Campaigns)
	require.Equal(t, 200, call("m1", "GET", "/v1/recertifications", "", &list))
	require.Len(t, list.Campaigns, 1)
	assert.Equal(t, recert.Counts{Items: 4, Pending: 2, Confirmed: 1, Revoked: 1}, list.Campaigns[0].Counts)

	// Before the deadline nothing is enforced; after it c3 is suspended, c4 lapses.
	closed, err := a.Enforce(ctx)
	require.NoError(t, err)
	assert.Empty(t, closed)
	now = deadline.Add(time.Minute)
	closed, err = a.Enforce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{camp.ID}, closed)
	require.Len(t, cp.cmds, 2)
	assert.Equal(t, lifecycle.OpSuspend, cp.cmds[1].Op)
	assert.Equal(t, "c3", cp.cmds[1].CredentialID)
	var got api.CampaignView
	require.Equal(t, 200, call("m1", "GET", "/v1/recertifications/"+camp.ID, "", &got))
	assert.Equal(t, recert.StatusClosed, got.Status)
	assert.Equal(t, recert.Counts{Items: 4, Confirmed: 1, Revoked: 1, Suspended: 1, Lapsed: 1}, got.Counts)
	assert.Equal(t, 409, decide("m1", "c4", recert.Confirmed), "closed")
	closed, err = a.Enforce(ctx)
	require.NoError(t, err)
	assert.Empty(t, closed, "enforced once")

	assert.Equal(t, []string{"recert.open recert/" + camp.ID, "recert.confirmed c1", "recert.revoked c2", "recert.suspended c3",
		"recert.lapsed c4", "recert.close recert/" + camp.ID}, log.actions())
}
