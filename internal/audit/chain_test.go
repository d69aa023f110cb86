package audit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKeys = func() *Keyring {
	k, err := NewKeyring("k2", map[string][]byte{
		"k1": []byte(strings.Repeat("old-audit-key-", 3)),
		"k2": []byte(strings.Repeat("new-audit-key-", 3)),
	})
	if err != nil {
		panic(err)
	}
	return k
}()

// chain returns n chained rows, keyed with keys (nil: unkeyed).
func chain(n int, keys *Keyring) []Row {
	var rows []Row
	prev := ""
	for i := 1; i <= n; i++ {
		r := Row{Chain: "c", Seq: uint64(i), TsMs: int64(1000 + i), Actor: "ops", Action: "credential.revoke",
			Target: "cred", details: `{"i":"x"}`, PrevHash: prev}
		if keys != nil {
			r.Hash = r.keyedHash(keys, keys.Current())
			r.KeyID = keys.Current()
		} else {
			r.Hash = r.computeHash()
		}
		prev = r.Hash
		rows = append(rows, r)
	}
	return rows
}

// rehash recomputes the hashes of rows[from:] and re-links them, as an
// attacker without the key can: unkeyed SHA-256, or a made-up MAC.
func rehash(rows []Row, from int, forgedMAC bool) []Row {
	for i := from; i < len(rows); i++ {
		if i > 0 {
			rows[i].PrevHash = rows[i-1].Hash
		}
		if forgedMAC {
			rows[i].Hash = "hmac-sha256:k2:" + rows[i].computeHash()
		} else {
			rows[i].Hash = rows[i].computeHash()
		}
	}
	return rows
}

func TestVerifyChainCases(t *testing.T) {
	f := func(name string, keys *Keyring, tamper func(rows []Row) []Row, want []Finding) {
		t.Run(name, func(t *testing.T) {
			got := verifyChain(tamper(chain(8, keys)), keys).findings
			for i := range got {
				got[i].Detail = ""
			}
			assert.Equal(t, want, got)
		})
	}
	for _, keys := range []*Keyring{nil, testKeys} {
		mode := "unkeyed/"
		if keys != nil {
			mode = "keyed/"
		}
		f(mode+"intact", keys, func(r []Row) []Row { return r }, nil)
		f(mode+"content changed", keys, func(r []Row) []Row { r[3].Actor = "mallory"; return r },
			[]Finding{{Chain: "c", Seq: 4, Kind: KindAltered}})
		f(mode+"removed", keys, func(r []Row) []Row { return append(r[:2], r[3:]...) },
			[]Finding{{Chain: "c", Seq: 3, Kind: KindRemoved}})
		f(mode+"identical duplicate is harmless", keys, func(r []Row) []Row {
			return append(r[:3], append([]Row{r[2]}, r[3:]...)...)
		}, nil)
	}
	// Unkeyed, one entry re-hashed: the successor's link names it. A whole
	// re-hashed tail cannot be told from an intact one (that is what keys
	// and checkpoints are for).
	f("unkeyed/content changed and re-hashed", nil, func(r []Row) []Row {
		r[4].Actor = "mallory"
		r[4].Hash = r[4].computeHash()
		return r
	}, []Finding{{Chain: "c", Seq: 5, Kind: KindRehashed}})
	f("unkeyed/changed and the whole tail re-hashed", nil, func(r []Row) []Row {
		r[4].Actor = "mallory"
		return rehash(r, 4, false)
	}, nil)
	// Keyed: without the key, a re-hash is always seen.
	f("keyed/changed and the tail re-hashed without the key", testKeys, func(r []Row) []Row {
		r[4].Actor = "mallory"
		return rehash(r, 4, false)
	}, []Finding{{Chain: "c", Seq: 5, Kind: KindRehashed}, {Chain: "c", Seq: 6, Kind: KindRehashed},
		{Chain: "c", Seq: 7, Kind: KindRehashed}, {Chain: "c", Seq: 8, Kind: KindRehashed}})
	f("keyed/changed and the tail re-hashed with a made-up MAC", testKeys, func(r []Row) []Row {
		r[4].Actor = "mallory"
		return rehash(r, 4, true)
	}, []Finding{{Chain: "c", Seq: 5, Kind: KindAltered}, {Chain: "c", Seq: 6, Kind: KindAltered},
		{Chain: "c", Seq: 7, Kind: KindAltered}, {Chain: "c", Seq: 8, Kind: KindAltered}})
	f("keyed/one entry re-hashed", testKeys, func(r []Row) []Row {
		r[4].Actor = "mallory"
		r[4].Hash = r[4].computeHash()
		return r
	}, []Finding{{Chain: "c", Seq: 5, Kind: KindRehashed}})
	f("keyed/unknown key id", testKeys, func(r []Row) []Row {
		r[2].Hash = strings.Replace(r[2].Hash, ":k2:", ":k9:", 1)
		r[3].PrevHash = r[2].Hash
		return r
	}, []Finding{{Chain: "c", Seq: 3, Kind: KindUnknownKey}, {Chain: "c", Seq: 4, Kind: KindAltered}})
	f("conflicting duplicate", nil, func(r []Row) []Row {
		d := r[2]
		d.Actor = "mallory"
		d.Hash = d.computeHash()
		return append(r[:3], append([]Row{d}, r[3:]...)...)
	}, []Finding{{Chain: "c", Seq: 3, Kind: KindInserted}})
}

func TestUnkeyedEntriesBeforeKeyedOnesVerify(t *testing.T) {
	rows := chain(3, nil)
	prev := rows[2].Hash
	for i := 4; i <= 6; i++ {
		r := Row{Chain: "c", Seq: uint64(i), TsMs: int64(2000 + i), Actor: "ops", Action: "x", PrevHash: prev}
		r.Hash = r.keyedHash(testKeys, "k1") // an older key still verifies
		prev = r.Hash
		rows = append(rows, r)
	}
	got := verifyChain(rows, testKeys)
	assert.Empty(t, got.findings)
	assert.Equal(t, 3, got.unkeyed)
	got = verifyChain(rows, nil)
	assert.Empty(t, got.findings)
	assert.Equal(t, 3, got.unchecked)
}

func TestHashCoversEveryField(t *testing.T) {
	for _, keys := range []*Keyring{nil, testKeys} {
		base := chain(2, keys)[1]
		for name, change := range map[string]func(r *Row){
			"chain": func(r *Row) { r.Chain = "d" }, "seq": func(r *Row) { r.Seq++ },
			"ts": func(r *Row) { r.TsMs++ }, "actor": func(r *Row) { r.Actor += "x" },
			"action": func(r *Row) { r.Action += "x" }, "target": func(r *Row) { r.Target += "x" },
			"details": func(r *Row) { r.details += " " }, "prev": func(r *Row) { r.PrevHash = "00" },
		} {
			r := base
			change(&r)
			require.Equal(t, statusBad, r.check(keys), name)
		}
	}
}

func TestKeyFile(t *testing.T) {
	k, err := ParseKeyFile([]byte("# rotated 2026-01\nk1 " + strings.Repeat("a", 32) + "\n\nk2 " + strings.Repeat("b", 40) + "\n"))
	require.NoError(t, err)
	assert.Equal(t, "k2", k.Current())
	assert.ElementsMatch(t, []string{"k1", "k2"}, k.IDs())
	for _, bad := range []string{"", "k1 short", "k1\n", "k/1 " + strings.Repeat("a", 32), "k1 " + strings.Repeat("a", 32) + "\nk1 " + strings.Repeat("b", 32)} {
		_, err := ParseKeyFile([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
	a, err := KeyringFromSecret(strings.Repeat("s", 32))
	require.NoError(t, err)
	b, err := KeyringFromSecret(strings.Repeat("t", 32))
	require.NoError(t, err)
	assert.NotEqual(t, a.Current(), b.Current())
	_, err = KeyringFromSecret("short")
	assert.Error(t, err)
}

func TestCheckpointSignature(t *testing.T) {
	cp := testKeys.Sign(Checkpoint{Chain: "c", Seq: 7, Hash: "h", TsMs: 99})
	require.NoError(t, testKeys.VerifyCheckpoint(cp))
	for name, change := range map[string]func(c *Checkpoint){
		"chain": func(c *Checkpoint) { c.Chain = "d" }, "seq": func(c *Checkpoint) { c.Seq++ },
		"hash": func(c *Checkpoint) { c.Hash = "x" }, "ts": func(c *Checkpoint) { c.TsMs++ },
		"key": func(c *Checkpoint) { c.KeyID = "k1" }, "mac": func(c *Checkpoint) { c.MAC = "00" },
	} {
		c := cp
		change(&c)
		assert.Error(t, testKeys.VerifyCheckpoint(c), name)
	}
	c := cp
	c.KeyID = "k9"
	assert.ErrorIs(t, testKeys.VerifyCheckpoint(c), ErrUnknownKey)
}
