package stream

import (
	"sort"
	"sync"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// lockIndex answers "which locks hold a credential of these door groups"
// from the registry, rebuilt when the registry's locks change.
type lockIndex struct {
	reg     *registry.Registry
	mu      sync.Mutex
	n       uint64 // the registry's version the index was built from
	byGroup map[string][]registry.Lock
	all     []registry.Lock
}

var _ control.LockIndex = (*lockIndex)(nil)

func newLockIndex(reg *registry.Registry) *lockIndex { return &lockIndex{reg: reg} }

func (li *lockIndex) refresh() {
	li.mu.Lock()
	defer li.mu.Unlock()
	n := li.reg.Version()
	if li.byGroup != nil && n == li.n {
		return
	}
	li.all = li.reg.Locks()
	sort.Slice(li.all, func(i, j int) bool {
		if li.all[i].Vendor != li.all[j].Vendor {
			return li.all[i].Vendor < li.all[j].Vendor
		}
		return li.all[i].LockID < li.all[j].LockID
	})
	li.byGroup = map[string][]registry.Lock{}
	for _, l := range li.all {
		for _, g := range l.Groups {
			li.byGroup[g] = append(li.byGroup[g], l)
		}
	}
	li.n = n
}

// ForCredential returns the locks that hold a credential of the site's
// door groups ("*" = every group), sorted.
func (li *lockIndex) ForCredential(site string, groups []string) []control.LockRef {
	li.refresh()
	li.mu.Lock()
	defer li.mu.Unlock()
	seen := map[control.LockRef]bool{}
	var out []control.LockRef
	addLock := func(l registry.Lock) {
		if site != "" && l.SiteID != "" && l.SiteID != site {
			return
		}
		ref := control.LockRef{Vendor: l.Vendor, LockID: l.LockID}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	for _, g := range groups {
		if g == "*" {
			for _, l := range li.all {
				addLock(l)
			}
			continue
		}
		for _, l := range li.byGroup[g] {
			addLock(l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// groups returns every door group with its number of locks.
func (li *lockIndex) groups() map[string]int {
	li.refresh()
	li.mu.Lock()
	defer li.mu.Unlock()
	out := map[string]int{}
	for g, ls := range li.byGroup {
		out[g] = len(ls)
	}
	return out
}

// sites returns every site with its number of locks.
func (li *lockIndex) sites() map[string]int {
	li.refresh()
	li.mu.Lock()
	defer li.mu.Unlock()
	out := map[string]int{}
	for _, l := range li.all {
		if l.SiteID != "" {
			out[l.SiteID]++
		}
	}
	return out
}
