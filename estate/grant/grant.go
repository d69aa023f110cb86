// Package grant is the estate policy at grant time, on the live lock
// registry: Checker refuses a credential the locks it would reach cannot
// enforce (control/api's GrantPolicy) and says what each grant command
// carries to a lock (control.Enforcement). A refusal is lifted only by a
// recorded exception (ExceptionChecker: serve asks the exception register,
// package exception; NoRegister records none).
package grant

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// ExceptionQuery is one refused grant an exception could lift: whose
// credential, on which lock, for which missing capability.
type ExceptionQuery struct {
	SubjectID  string
	Role       string
	Lock       registry.Lock
	Capability string
}

// Exception is an exception register's answer: the exception that lifts
// the refusal (ID), or why none does.
type Exception struct {
	ID  string
	Why string
}

// ExceptionChecker looks refused grants up in an exception register.
type ExceptionChecker interface {
	Exception(ctx context.Context, q ExceptionQuery) (Exception, error)
}

// NoExceptionRegister is the answer of NoRegister.
const NoExceptionRegister = "no exception register configured"

// NoRegister is the ExceptionChecker while keyfleet has no exception
// register: no refusal is lifted.
type NoRegister struct{}

// Exception implements ExceptionChecker.
func (NoRegister) Exception(context.Context, ExceptionQuery) (Exception, error) {
	return Exception{Why: NoExceptionRegister}, nil
}

// Checker is the grant-time policy on the lock registry.
type Checker struct {
	policy     estate.Policy
	reg        *registry.Registry
	exceptions ExceptionChecker

	mu    sync.Mutex
	index *lockIndex // rebuilt when the registry's version moves
}

// lockIndex is the registry's locks in service by site and door group.
type lockIndex struct {
	version uint64
	bySite  map[string]map[string][]registry.Lock // site ("" for site-less locks) → group → locks
	sites   map[string][]registry.Lock            // site → every lock
	all     []registry.Lock

	mu        sync.Mutex
	decisions map[decisionKey]decision // the policy's answers by what they depend on
}

type decisionKey struct {
	vendor, model, firmware string
	tier                    int
	need                    estate.Need
}

type decision struct {
	d   estate.Decision
	err error
}

// check is policy.Check, remembered per model, firmware, tier and need.
func (ix *lockIndex) check(p estate.Policy, l registry.Lock, n estate.Need) (estate.Decision, error) {
	k := decisionKey{l.Vendor, l.Model, l.Firmware, l.Tier, n}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if d, ok := ix.decisions[k]; ok {
		return d.d, d.err
	}
	d, err := p.Check(Lock(l), n)
	ix.decisions[k] = decision{d, err}
	return d, err
}

func (c *Checker) locks() *lockIndex {
	v := c.reg.Version()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index != nil && c.index.version == v {
		return c.index
	}
	ix := &lockIndex{version: v, bySite: map[string]map[string][]registry.Lock{}, sites: map[string][]registry.Lock{},
		all: c.reg.Locks(), decisions: map[decisionKey]decision{}}
	for _, l := range ix.all {
		g := ix.bySite[l.SiteID]
		if g == nil {
			g = map[string][]registry.Lock{}
			ix.bySite[l.SiteID] = g
		}
		for _, grp := range l.Groups {
			g[grp] = append(g[grp], l)
		}
		ix.sites[l.SiteID] = append(ix.sites[l.SiteID], l)
	}
	c.index = ix
	return ix
}

// matching is registry.Matching on the index: the locks in service a
// credential of a site's door groups reaches, sorted by vendor and lock id.
func (ix *lockIndex) matching(site string, groups []string) []registry.Lock {
	var out []registry.Lock
	seen := map[[2]string]bool{}
	add := func(ls []registry.Lock) {
		for _, l := range ls {
			if k := [2]string{l.Vendor, l.LockID}; !seen[k] {
				seen[k] = true
				out = append(out, l)
			}
		}
	}
	sites := []string{site, ""} // a lock without a site matches any site
	if site == "" {
		sites = sites[:0]
		for s := range ix.bySite {
			sites = append(sites, s)
		}
	}
	for _, siteID := range sites {
		byGroup, ok := ix.bySite[siteID]
		if !ok {
			continue
		}
		for _, g := range groups {
			if g == "*" {
				add(ix.sites[siteID])
				continue
			}
			add(byGroup[g])
		}
	}
	slices.SortFunc(out, func(a, b registry.Lock) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.LockID, b.LockID))
	})
	return out
}

var _ control.Enforcement = (*Checker)(nil)

// New returns a checker; exceptions nil means NoRegister.
func New(p estate.Policy, reg *registry.Registry, exceptions ExceptionChecker) *Checker {
	if exceptions == nil {
		exceptions = NoRegister{}
	}
	return &Checker{policy: p, reg: reg, exceptions: exceptions}
}

// Lock is a registry lock as the estate model sees it.
func Lock(l registry.Lock) estate.Lock {
	return estate.Lock{Vendor: l.Vendor, LockID: l.LockID, Model: l.Model, Firmware: l.Firmware,
		Door: estate.Door{SiteID: l.SiteID, DoorID: l.DoorID}, Tier: l.Tier}
}

// need is what a credential asks of its locks.
func need(windows []control.Window, validUntilMs int64) estate.Need {
	return estate.Need{Windows: len(windows), Expires: validUntilMs > 0}
}

// Refusals lists the locks (in service, of the credential's site and door
// groups) that refuse the credential and why, unless an exception lifts
// the refusal. Locks the policy cannot judge (a tier it does not define)
// are refused too: a grant never lands on a lock nobody classified right.
func (c *Checker) Refusals(ctx context.Context, spec control.Spec) ([]control.Refusal, error) {
	n := need(spec.Windows, spec.ValidUntilMs)
	var out []control.Refusal
	ix := c.locks()
	for _, l := range ix.matching(spec.SiteID, spec.DoorGroups) {
		ref := control.Refusal{Vendor: l.Vendor, LockID: l.LockID, SiteID: l.SiteID, DoorID: l.DoorID, Tier: l.Tier}
		d, err := ix.check(c.policy, l, n)
		if err != nil {
			ref.Capability, ref.Need, ref.Have = "tier", "a tier the estate policy defines", err.Error()
			if ex, err := c.exception(ctx, spec, l, ref.Capability); err != nil {
				return nil, err
			} else if ex.ID == "" {
				ref.Exception = ex.Why
				out = append(out, ref)
			}
			continue
		}
		for _, g := range d.Refusals {
			ex, err := c.exception(ctx, spec, l, g.Capability)
			if err != nil {
				return nil, err
			}
			if ex.ID != "" {
				continue
			}
			r := ref
			r.Capability, r.Need, r.Have, r.Exception = g.Capability, g.Need, g.Have, ex.Why
			out = append(out, r)
		}
	}
	return out, nil
}

func (c *Checker) exception(ctx context.Context, spec control.Spec, l registry.Lock, capability string) (Exception, error) {
	ex, err := c.exceptions.Exception(ctx, ExceptionQuery{SubjectID: spec.SubjectID, Role: spec.Role, Lock: l, Capability: capability})
	if err != nil {
		return Exception{}, fmt.Errorf("exception register: %w", err)
	}
	return ex, nil
}

// Carry says what a credential's grant carries to a lock: its windows and
// end date only where the lock enforces them, and how they are enforced
// where it does not. A lock the registry does not know, or the policy cannot
// judge, gets everything (nothing is known to be weaker).
func (c *Checker) Carry(r *control.Record, ref control.LockRef) control.Carry {
	all := control.Carry{Windows: true, Expiry: true}
	rec, ok := c.reg.Get(ref.Vendor, ref.LockID)
	if !ok {
		return all
	}
	n := need(r.Windows, r.ValidUntilMs)
	d, err := c.locks().check(c.policy, rec.Lock, n)
	if err != nil {
		return all
	}
	out := control.Carry{Windows: n.Windows == 0 || d.Carry.Windows, Expiry: !n.Expires || d.Carry.Expiry == estate.EnforcedAtLock}
	if d.Carry.Weaker {
		out.Weaker = &control.WeakerLock{Vendor: ref.Vendor, LockID: ref.LockID, Schedule: d.Carry.Schedule,
			Expiry: d.Carry.Expiry, ExpiryLateS: int64(time.Duration(d.Carry.ExpiryLate) / time.Second)}
		if out.Weaker.Schedule == estate.EnforcedAtLock {
			out.Weaker.Schedule = ""
		}
		if out.Weaker.Expiry == estate.EnforcedAtLock {
			out.Weaker.Expiry = ""
		}
	}
	return out
}
