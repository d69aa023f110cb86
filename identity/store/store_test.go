package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity/scim"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// services gives a test its own ClickHouse database and topics (identity
// sync's included).
func services(t *testing.T) (driver.Conn, bus.Config) {
	t.Helper()
	conn, _ := testenv.ClickHouse(t)
	bc := testenv.Kafka(t, 2)
	return conn, bc
}

func subjectOf(r scim.Record) string {
	return scim.SubjectOf(r, func(s string) string { return "subj-" + s }, true)
}

// instance starts one serve instance's store (writer and owner) and
// returns it with a function that stops it.
func instance(t *testing.T, conn driver.Conn, bc bus.Config) (*Store, func()) {
	t.Helper()
	s, err := New(Options{Conn: conn, Bus: bc, Subject: subjectOf, WriteTimeout: 30 * time.Second, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done)
			assert.NoError(t, s.Close())
		})
	}
	t.Cleanup(stop)
	return s, stop
}

var day = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

func rec(typ, id string, version int64, doc string) scim.Record {
	d := json.NewDecoder(bytesReader(doc))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	return scim.Record{Type: typ, ID: id, Version: version, Created: day, Modified: day.Add(time.Duration(version) * time.Minute), Doc: m}
}

// TestStoreContract runs the same script against the in-memory store and
// the ClickHouse store: the SCIM engine relies on exactly this behaviour.
func TestStoreContract(t *testing.T) {
	conn, bc := services(t)
	chStore, _ := instance(t, conn, bc)
	for name, s := range map[string]scim.Store{"memory": scim.NewMemoryStore(), "clickhouse": chStore} {
		t.Run(name, func(t *testing.T) { contract(t, s) })
	}
}

func contract(t *testing.T, s scim.Store) {
	ctx := context.Background()
	ids := func(recs []scim.Record, err error) []string {
		t.Helper()
		require.NoError(t, err)
		out := []string{}
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	alice := rec("User", "u1", 1, `{"userName":"Alice","externalId":"e1","emails":[{"value":"alice@example.com"}],"x":{"n":1.50}}`)
	require.NoError(t, s.Create(ctx, alice))
	got, err := s.Get(ctx, "User", "u1")
	require.NoError(t, err)
	assert.Equal(t, alice, got)
	assert.Equal(t, json.Number("1.50"), got.Doc["x"].(map[string]any)["n"])

	err = s.Create(ctx, rec("User", "u2", 1, `{"userName":"ALICE"}`))
	assert.ErrorIs(t, err, scim.ErrConflict)
	assert.ErrorContains(t, err, "userName")
	assert.ErrorIs(t, s.Create(ctx, rec("User", "u2", 1, `{"userName":"bob","externalId":"e1"}`)), scim.ErrConflict)
	assert.ErrorIs(t, s.Create(ctx, rec("User", "u1", 1, `{"userName":"carol"}`)), scim.ErrConflict)
	require.NoError(t, s.Create(ctx, rec("User", "u2", 1, `{"userName":"bob"}`)))
	require.NoError(t, s.Create(ctx, rec("Group", "g1", 1, `{"displayName":"Staff","externalId":"e1","members":[{"value":"u1"},{"value":"u2"}]}`)))
	_, err = s.Get(ctx, "Group", "u1")
	assert.ErrorIs(t, err, scim.ErrNotFound)

	assert.Equal(t, []string{"u1", "u2"}, ids(s.List(ctx, scim.Query{Type: "User"})))
	assert.Equal(t, []string{"u1"}, ids(s.List(ctx, scim.Query{Type: "User", Key: scim.KeyUserName, Value: "alice"})))
	assert.Equal(t, []string{"u1"}, ids(s.List(ctx, scim.Query{Type: "User", Key: scim.KeyExternalID, Value: "e1"})))
	assert.Equal(t, []string{"g1"}, ids(s.List(ctx, scim.Query{Type: "Group", Key: scim.KeyMember, Value: "u2"})))
	assert.Equal(t, []string{"g1"}, ids(s.List(ctx, scim.Query{Type: "Group", Key: scim.KeyDisplayName, Value: "staff"})))
	assert.Equal(t, []string{}, ids(s.List(ctx, scim.Query{Type: "User", Key: scim.KeyUserName, Value: "nobody"})))

	// Replace is version-checked; a rename frees the old name.
	require.NoError(t, s.Replace(ctx, rec("User", "u1", 2, `{"userName":"alicia","externalId":"e1"}`), 1))
	assert.ErrorIs(t, s.Replace(ctx, rec("User", "u1", 2, `{"userName":"alicia2"}`), 1), scim.ErrVersion)
	assert.ErrorIs(t, s.Replace(ctx, rec("User", "zz", 2, `{"userName":"z"}`), 1), scim.ErrNotFound)
	assert.ErrorIs(t, s.Replace(ctx, rec("User", "u2", 2, `{"userName":"alicia"}`), 1), scim.ErrConflict)
	assert.Equal(t, []string{}, ids(s.List(ctx, scim.Query{Type: "User", Key: scim.KeyUserName, Value: "alice"})))
	require.NoError(t, s.Replace(ctx, rec("Group", "g1", 2, `{"displayName":"Staff","members":[{"value":"u1"}]}`), 1))
	assert.Equal(t, []string{}, ids(s.List(ctx, scim.Query{Type: "Group", Key: scim.KeyMember, Value: "u2"})))
	got, err = s.Get(ctx, "User", "u1")
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Version)
	assert.Equal(t, "alicia", got.Doc["userName"])

	// Delete: version-checked (0: any); the keys are free afterwards.
	assert.ErrorIs(t, s.Delete(ctx, "User", "u1", 1), scim.ErrVersion)
	require.NoError(t, s.Delete(ctx, "User", "u1", 2))
	assert.ErrorIs(t, s.Delete(ctx, "User", "u1", 0), scim.ErrNotFound)
	_, err = s.Get(ctx, "User", "u1")
	assert.ErrorIs(t, err, scim.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "User", "u2", 0))
	require.NoError(t, s.Create(ctx, rec("User", "u3", 1, `{"userName":"alicia","externalId":"e1"}`)))
	assert.Equal(t, []string{"u3"}, ids(s.List(ctx, scim.Query{Type: "User"})))
}

// TestTwoInstances: two serve instances (two stores, each running the
// owner loop in one consumer group) race to create the same people and to
// replace the same version. Every unique key is created once and every
// version replaced once, whoever owns the partition.
func TestTwoInstances(t *testing.T) {
	conn, bc := services(t)
	a, _ := instance(t, conn, bc)
	b, stopB := instance(t, conn, bc)
	ctx := context.Background()

	const people, tries = 6, 4
	var mu sync.Mutex
	created := map[string]int{}
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, a, b} {
		for p := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("u-%d-%d", i, p)
				err := s.Create(ctx, rec("User", id, 1, fmt.Sprintf(`{"userName":"person%d"}`, p)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created[fmt.Sprint(p)]++
				case !errors.Is(err, scim.ErrConflict):
					t.Errorf("create %s: %v", id, err)
				}
			}()
		}
	}
	wg.Wait()
	require.Len(t, created, people)
	for p, n := range created {
		assert.Equal(t, 1, n, "person%s created %d times", p, n)
	}
	users, err := a.List(ctx, scim.Query{Type: "User"})
	require.NoError(t, err)
	require.Len(t, users, people)

	// Everyone replaces version 1 of the same user: one wins.
	target := users[0]
	wins := 0
	for i := range tries {
		for _, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := target
				next.Version = 2
				next.Doc = map[string]any{"userName": target.Doc["userName"], "title": fmt.Sprint(i)}
				err := s.Replace(ctx, next, 1)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, scim.ErrVersion):
					t.Errorf("replace: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	assert.Equal(t, 1, wins)

	// One instance stops (its partition moves, or never was its); writes
	// through the other continue where the first left off.
	stopB()
	got, err := a.Get(ctx, "User", target.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)
	got.Version = 3
	require.NoError(t, a.Replace(ctx, got, 2))
}

// TestRestart: a new instance on the same database and topics (a restart)
// sees everything and keeps checking versions and keys.
func TestRestart(t *testing.T) {
	conn, bc := services(t)
	ctx := context.Background()
	a, stopA := instance(t, conn, bc)
	require.NoError(t, a.Create(ctx, rec("User", "u1", 1, `{"userName":"alice","externalId":"e1"}`)))
	require.NoError(t, a.Create(ctx, rec("User", "u2", 1, `{"userName":"bob"}`)))
	require.NoError(t, a.Delete(ctx, "User", "u2", 1))
	stopA()

	c, _ := instance(t, conn, bc)
	got, err := c.Get(ctx, "User", "u1")
	require.NoError(t, err)
	assert.Equal(t, "alice", got.Doc["userName"])
	assert.ErrorIs(t, c.Create(ctx, rec("User", "u9", 1, `{"userName":"ALICE"}`)), scim.ErrConflict)
	assert.ErrorIs(t, c.Replace(ctx, rec("User", "u1", 3, `{"userName":"alice"}`), 2), scim.ErrVersion)
	require.NoError(t, c.Replace(ctx, rec("User", "u1", 2, `{"userName":"alice","externalId":"e1","active":false}`), 1))
	require.NoError(t, c.Create(ctx, rec("User", "u3", 1, `{"userName":"bob"}`)))
	users, err := c.UsersBySubject(ctx, []string{"subj-e1", "subj-u3", "subj-u2"})
	require.NoError(t, err)
	require.Len(t, users, 2)
	assert.Equal(t, "u1", users[0].ID)
	n, err := c.CountUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, c.PruneOnce(ctx))
	got, err = c.Get(ctx, "User", "u1")
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Version)
}

func bytesReader(s string) *strings.Reader { return strings.NewReader(s) }
