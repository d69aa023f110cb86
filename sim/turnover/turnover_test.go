package turnover

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/identity/scim"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

type idpAuth struct{}

func (idpAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if token == "idp" {
		return httpapi.Principal{Name: "idp", Role: httpapi.RoleSCIM}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// provider serves keyfleet's SCIM service provider (in-memory store) on a
// loopback port and collects the identity changes it emits.
func provider(t *testing.T) (string, func() map[identity.ChangeKind]int) {
	var mu sync.Mutex
	counts := map[identity.ChangeKind]int{}
	svc, err := scim.New(scim.Options{Store: scim.NewMemoryStore(), Subject: func(s string) string { return "sub-" + s },
		SubjectFromExternalID: true, Notify: func(_ context.Context, c identity.Change) error {
			mu.Lock()
			defer mu.Unlock()
			counts[c.Kind]++
			return nil
		}})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: idpAuth{}}, svc.Routes())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String() + scim.Prefix, func() map[identity.ChangeKind]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[identity.ChangeKind]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}
}

func TestDriverPushesJoinersMoversLeavers(t *testing.T) {
	base, changes := provider(t)
	ctx := context.Background()
	newDriver := func() *Driver {
		d, err := NewDriver(Options{Client: &Client{Base: base, Token: "idp"}, Sites: []string{"site-01", "site-02"},
			Seed: 7, MaxPeople: 6, EndDateIn: time.Hour})
		require.NoError(t, err)
		require.NoError(t, d.Start(ctx))
		return d
	}
	d := newDriver()
	made := map[string]int{}
	for range 60 {
		c, err := d.Step(ctx)
		require.NoError(t, err, "%+v", c)
		made[c.Kind+"/"+c.How]++
	}
	for _, k := range []string{"joined/created", "moved/group", "left/deactivated", "left/deleted", "left/end_date"} {
		assert.Positive(t, made[k], "%s in %v", k, made)
	}
	got := changes()
	// Every joiner is joined then moved into its group; a mover is moved
	// twice (added to the new group, removed from the old one); leavers by
	// end date leave only when the date passes (an hour from now).
	assert.Equal(t, made["joined/created"], got[identity.Joined])
	assert.Equal(t, made["joined/created"]+2*made["moved/group"], got[identity.Moved])
	assert.Equal(t, made["left/deactivated"]+made["left/deleted"], got[identity.Left])
	assert.Equal(t, made["left/end_date"], got[identity.Updated])
	assert.LessOrEqual(t, len(d.people), 6)

	// A restarted driver finds its people and groups again.
	d2 := newDriver()
	assert.Equal(t, d.groups, d2.groups)
	assert.ElementsMatch(t, d.people, d2.people)
	assert.Equal(t, d.next, d2.next)
}

func TestPeopleFeed(t *testing.T) {
	f, err := fleet.Generate(fleet.Options{Seed: 3, Sites: 2, DoorsPerSite: 30, Subjects: 60,
		VendorMix: map[string]float64{"matter": 1, "nuki": 1}, SpareDevices: 0})
	require.NoError(t, err)
	people := People(f)
	visitors := 0
	for _, s := range f.Subjects {
		if s.Role == fleet.RoleGuest || s.Role == fleet.RoleEmergency {
			visitors++
		}
	}
	require.Len(t, people, len(f.Subjects)-visitors)
	path := filepath.Join(t.TempDir(), "people.csv")
	require.NoError(t, WritePeople(path, people))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	back, err := feed.Parse(data, "")
	require.NoError(t, err)
	assert.Equal(t, people, back)
	assert.Equal(t, f.Subjects[0].ID, back[0].SubjectID)
}
