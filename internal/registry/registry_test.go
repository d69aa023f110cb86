package registry_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/registry"
)

func lock(vendor, id, site, door string, tier int, groups ...string) registry.Lock {
	return registry.Lock{Vendor: vendor, LockID: id, Groups: groups, Tier: tier,
		LockInfo: registry.LockInfo{SiteID: site, DoorID: door}}
}

func ids(locks []registry.Lock) []string {
	var out []string
	for _, l := range locks {
		out = append(out, l.Vendor+"/"+l.LockID)
	}
	return out
}

func TestPutVersionsAndRetire(t *testing.T) {
	r := registry.New()
	r.Apply(registry.File{Locks: []registry.Lock{lock("nuki", "n1", "s1", "lobby", 0, "entrance"), lock("seam", "k1", "s1", "gym", 0, "amenity")}})
	n, _ := r.Len()
	assert.Equal(t, 2, n)
	v0 := r.Version()

	// An API record replaces the file's lock; an older one does not replace it.
	moved := lock("nuki", "n1", "s1", "lobby-2", 1, "entrance")
	assert.True(t, r.Put(registry.Record{Lock: moved, Version: 10, Op: registry.OpUpdate}))
	assert.False(t, r.Put(registry.Record{Lock: lock("nuki", "n1", "s1", "old", 1), Version: 9, Op: registry.OpUpdate}))
	assert.False(t, r.Put(registry.Record{Lock: lock("nuki", "n1", "s1", "same", 1), Version: 10, Op: registry.OpUpdate}))
	info, ok := r.Lock("nuki", "n1")
	require.True(t, ok)
	assert.Equal(t, "lobby-2", info.DoorID)
	assert.Greater(t, r.Version(), v0)

	// A file loaded later does not undo the API's change.
	r.Apply(registry.File{Locks: []registry.Lock{lock("nuki", "n1", "s1", "from-file", 0)}})
	info, _ = r.Lock("nuki", "n1")
	assert.Equal(t, "lobby-2", info.DoorID)

	// Retired: out of service, still resolvable for late events.
	assert.True(t, r.Put(registry.Record{Lock: lock("seam", "k1", "s1", "gym", 3, "amenity"), Version: 11, Retired: true, Op: registry.OpRetire}))
	assert.Equal(t, []string{"nuki/n1"}, ids(r.Locks()))
	info, ok = r.Lock("seam", "k1")
	assert.True(t, ok)
	assert.Equal(t, "gym", info.DoorID)
	n, _ = r.Len()
	assert.Equal(t, 1, n)
	recs := r.Records()
	require.Len(t, recs, 2)
	assert.True(t, recs[1].Retired)
	got, ok := r.Get("seam", "k1")
	require.True(t, ok)
	assert.Equal(t, registry.OpRetire, got.Op)

	// Back in service.
	assert.True(t, r.Put(registry.Record{Lock: lock("seam", "k1", "s1", "gym", 3, "amenity"), Version: 12, Op: registry.OpUpdate}))
	n, _ = r.Len()
	assert.Equal(t, 2, n)
}

func TestMatching(t *testing.T) {
	r := registry.New()
	r.Apply(registry.File{Locks: []registry.Lock{
		lock("nuki", "n1", "s1", "lobby", 1, "entrance"),
		lock("matter", "m1", "s1", "gym", 3, "amenity"),
		lock("matter", "m2", "s2", "lobby", 1, "entrance"),
		lock("legacy", "p/r1", "", "shared", 2, "entrance", "service"),
	}})
	assert.Equal(t, []string{"legacy/p/r1", "nuki/n1"}, ids(r.Matching("s1", []string{"entrance"})))
	assert.Equal(t, []string{"legacy/p/r1", "matter/m1", "nuki/n1"}, ids(r.Matching("s1", []string{"*"})))
	assert.Equal(t, []string{"legacy/p/r1", "matter/m2", "nuki/n1"}, ids(r.Matching("", []string{"entrance"})))
	assert.Empty(t, r.Matching("s1", []string{"garage"}))
}

func TestValidate(t *testing.T) {
	f := func(name string, l registry.Lock, want string) {
		t.Helper()
		err := l.Validate()
		if want == "" {
			assert.NoError(t, err, name)
			return
		}
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
	}
	f("ok", lock("legacy", "PANEL-1/READER-2", "s1", "d1", 2, "entrance"), "")
	f("vendor", lock("acme", "a", "s1", "d1", 1), `vendor "acme"`)
	f("no id", lock("nuki", "", "s1", "d1", 1), "lock_id: required")
	f("space", lock("nuki", "n 1", "s1", "d1", 1), "lock_id: must not contain whitespace")
	f("mail", lock("nuki", "n1", "a@b.c", "d1", 1), "site_id: looks like an e-mail")
	f("group", lock("nuki", "n1", "s1", "d1", 1, ""), "groups: empty door group")
	f("tier", lock("nuki", "n1", "s1", "d1", 10), "tier 10")
	f("negative tier", lock("nuki", "n1", "s1", "d1", -1), "tier -1")
}

func TestCodecRoundTrip(t *testing.T) {
	recs := []registry.Record{
		{Lock: registry.Lock{Vendor: "legacy", LockID: "PANEL-1/READER-2", Groups: []string{"entrance", "service"},
			LockInfo: registry.LockInfo{SiteID: "s1", ZoneID: "z", DoorID: "d1"}, Model: "osdp-panel", Firmware: "2.1", Tier: 2}, Version: 7},
		{Lock: registry.Lock{Vendor: "seam", LockID: "k1", Tier: 3}, Version: 8, Retired: true},
	}
	var b bytes.Buffer
	require.NoError(t, registry.WriteCSV(&b, recs))
	rows, err := registry.ParseCSV(b.Bytes())
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for i, r := range rows {
		assert.True(t, r.Lock.Same(recs[i].Lock), "row %d: got %+v", i, r.Lock)
		assert.Equal(t, recs[i].Retired, r.Retired)
		assert.Equal(t, i+2, r.Line)
	}
	rows, err = registry.ParseJSON([]byte(`[{"vendor":"nuki","lock_id":"n1","site_id":"s1","door_id":"d","groups":["entrance"],
		"model":"smart-lock-4-pro","firmware":"4.1","tier":1,"version":3,"op":"create","actor":"x","ts_ms":5},
		{"vendor":"nuki","lock_id":"n2","retired":true,"reason":"replaced"}]`))
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, "smart-lock-4-pro", rows[0].Model)
	assert.True(t, rows[1].Retired)
	assert.Equal(t, "replaced", rows[1].Reason)
}

func TestCodecErrors(t *testing.T) {
	f := func(name string, parse func([]byte) ([]registry.Row, error), in string, want ...string) {
		t.Helper()
		_, err := parse([]byte(in))
		require.Error(t, err, name)
		for _, w := range want {
			assert.Contains(t, err.Error(), w, name)
		}
	}
	f("unknown column", registry.ParseCSV, "vendor,lock_id,colour\n", `unknown CSV column "colour"`)
	f("no lock id column", registry.ParseCSV, "vendor\nnuki\n", "lacks lock_id")
	f("bad rows named by line", registry.ParseCSV, "vendor,lock_id,tier\nnuki,n1,one\nacme,a1,1\nnuki,n2,2\nnuki,n1,3\n",
		`line 2: tier "one"`, `line 3: vendor "acme"`, "line 5: lock nuki/n1 is also on line 2")
	f("broken CSV", registry.ParseCSV, "vendor,lock_id\n\"nuki,n1\n", "CSV:")
	f("not an array", registry.ParseJSON, `{"vendor":"nuki"}`, "want a JSON array")
	f("unknown field", registry.ParseJSON, `[{"vendor":"nuki","lock_id":"n1","colour":"red"}]`, "line 1", `unknown field "colour"`)
	f("bad lock", registry.ParseJSON, `[{"vendor":"nuki","lock_id":"n1"},{"vendor":"nuki"}]`, "line 2: lock_id: required")
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("vendor,lock_id,site_id,zone_id,door_id,groups,model,firmware,tier,retired,version\nlegacy,P/R,s,z,d,a;b,osdp-panel,2.0,2,false,3\n"))
	f.Add([]byte("vendor,lock_id,tier\nnuki,n1,one\n"))
	f.Add([]byte("\ufeffVENDOR, lock_id\n\"nuki\",\"n 1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := registry.ParseCSV(data)
		if err != nil {
			return
		}
		for _, r := range rows {
			require.NoError(t, r.Lock.Validate())
			assert.False(t, strings.ContainsAny(r.LockID, " \n"))
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`[{"vendor":"nuki","lock_id":"n1","tier":1,"groups":["entrance"]}]`))
	f.Add([]byte(`[{"vendor":"nuki","lock_id":"n1","retired":true},{"vendor":"nuki","lock_id":"n1"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := registry.ParseJSON(data)
		if err != nil {
			return
		}
		for _, r := range rows {
			require.NoError(t, r.Lock.Validate())
		}
	})
}
