package audit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func chain(n int) []Row {
	var rows []Row
	prev := ""
	for i := 1; i <= n; i++ {
		r := Row{Chain: "c", Seq: uint64(i), TsMs: int64(1000 + i), Actor: "ops", Action: "credential.revoke",
			Target: "cred", details: `{"i":"x"}`, PrevHash: prev}
		r.Hash = r.computeHash()
		prev = r.Hash
		rows = append(rows, r)
	}
	return rows
}

func TestVerifyChainCases(t *testing.T) {
	f := func(name string, tamper func(rows []Row) []Row, want []Finding) {
		t.Run(name, func(t *testing.T) {
			got, _ := verifyChain(tamper(chain(8)))
			for i := range got {
				got[i].Detail = ""
			}
			assert.Equal(t, want, got)
		})
	}
	f("intact", func(r []Row) []Row { return r }, nil)
	f("content changed", func(r []Row) []Row { r[3].Actor = "mallory"; return r },
		[]Finding{{Chain: "c", Seq: 4, Kind: KindAltered}})
	f("content changed and re-hashed", func(r []Row) []Row {
		r[4].Actor = "mallory"
		r[4].Hash = r[4].computeHash()
		return r
	}, []Finding{{Chain: "c", Seq: 5, Kind: KindAltered}})
	f("removed", func(r []Row) []Row { return append(r[:2], r[3:]...) },
		[]Finding{{Chain: "c", Seq: 3, Kind: KindRemoved}})
	f("identical duplicate is harmless", func(r []Row) []Row {
		return append(r[:3], append([]Row{r[2]}, r[3:]...)...)
	}, nil)
	f("conflicting duplicate", func(r []Row) []Row {
		d := r[2]
		d.Actor = "mallory"
		d.Hash = d.computeHash()
		return append(r[:3], append([]Row{d}, r[3:]...)...)
	}, []Finding{{Chain: "c", Seq: 3, Kind: KindInserted}})
}

func TestHashCoversEveryField(t *testing.T) {
	base := chain(2)[1]
	for name, change := range map[string]func(r *Row){
		"chain": func(r *Row) { r.Chain = "d" }, "seq": func(r *Row) { r.Seq++ },
		"ts": func(r *Row) { r.TsMs++ }, "actor": func(r *Row) { r.Actor += "x" },
		"action": func(r *Row) { r.Action += "x" }, "target": func(r *Row) { r.Target += "x" },
		"details": func(r *Row) { r.details += " " }, "prev": func(r *Row) { r.PrevHash = "00" },
	} {
		r := base
		change(&r)
		require.NotEqual(t, base.Hash, r.computeHash(), name)
	}
}
