package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/estate/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// WeakLinks computes the weak links of the locks in service (one site, or
// all) ranked by the traffic of [from, to).
func (a *API) WeakLinks(ctx context.Context, from, to time.Time, site string) (*estate.WeakLinkReport, error) {
	uses, err := store.DoorUses(ctx, a.opts.Conn, from, to, site)
	if err != nil {
		return nil, err
	}
	rep := &estate.WeakLinkReport{FromMs: from.UnixMilli(), ToMs: to.UnixMilli(), Site: site, Order: "risk"}
	var locks []estate.Lock
	for _, l := range a.opts.Locks.Registry().Locks() {
		if site != "" && l.SiteID != site {
			continue
		}
		locks = append(locks, grant.Lock(l))
		if l.Tier == estate.Unclassified {
			rep.Unclassified++
		}
	}
	rep.Locks = len(locks)
	rep.WeakLinks, err = a.opts.Policy.WeakLinks(locks, uses)
	if err != nil {
		return nil, fmt.Errorf("weak links: %w", err)
	}
	if rep.WeakLinks == nil {
		rep.WeakLinks = []estate.WeakLink{}
	}
	rep.Total = len(rep.WeakLinks)
	return rep, nil
}

// linkCache keeps the last reports for a minute (the traffic scan reads up
// to 90 days of events); registry changes clear it.
type linkCache struct {
	mu sync.Mutex
	by map[string]cached
}

type cached struct {
	at  time.Time
	rep *estate.WeakLinkReport
}

func newLinkCache() *linkCache { return &linkCache{by: map[string]cached{}} }

func (c *linkCache) clear() {
	c.mu.Lock()
	clear(c.by)
	c.mu.Unlock()
}

func (a *API) cachedLinks(ctx context.Context, days int, site string) (*estate.WeakLinkReport, error) {
	key := strconv.Itoa(days) + "\x00" + site
	now := a.opts.Now()
	a.cache.mu.Lock()
	e, ok := a.cache.by[key]
	a.cache.mu.Unlock()
	if ok && now.Sub(e.at) < time.Minute && now.Sub(e.at) >= 0 {
		return e.rep, nil
	}
	to := now.Truncate(time.Minute)
	rep, err := a.WeakLinks(ctx, to.Add(-time.Duration(days)*24*time.Hour), to, site)
	if err != nil {
		return nil, err
	}
	a.cache.mu.Lock()
	a.cache.by[key] = cached{at: now, rep: rep}
	a.cache.mu.Unlock()
	return rep, nil
}

func (a *API) linkParams(c *fiber.Ctx) (days int, site string, limit int, err error) {
	v, err := httpapi.QueryParams(c, "days", "site", "limit")
	if err != nil {
		return 0, "", 0, err
	}
	days, limit = a.opts.TrafficDays, 100
	if s := v["days"]; s != "" {
		if days, err = strconv.Atoi(s); err != nil || days < 1 || days > MaxTrafficDays {
			return 0, "", 0, httpapi.BadRequest("days", fmt.Sprintf("days must be an integer in 1..%d", MaxTrafficDays))
		}
	}
	if s := v["limit"]; s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 10000 {
			return 0, "", 0, httpapi.BadRequest("limit", "limit must be an integer in 1..10000")
		}
	}
	site = v["site"]
	sites, err := httpapi.Caller(c).SiteFilter(site)
	if err != nil {
		return 0, "", 0, err
	}
	switch {
	case len(sites) == 1:
		site = sites[0]
	case len(sites) > 1:
		return 0, "", 0, httpapi.BadRequest("site", "site is required: this token is limited to several sites ("+strings.Join(sites, ", ")+")")
	}
	return days, site, limit, nil
}

func (a *API) handleWeakLinks(c *fiber.Ctx) error { return a.serveLinks(c, false) }

func (a *API) handlePlan(c *fiber.Ctx) error { return a.serveLinks(c, true) }

func (a *API) serveLinks(c *fiber.Ctx, plan bool) error {
	days, site, limit, err := a.linkParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	rep, err := a.cachedLinks(ctx, days, site)
	if err != nil {
		return unavailable(err)
	}
	out := *rep
	if plan {
		out.WeakLinks, out.Order = estate.Plan(rep.WeakLinks), "plan"
	}
	if len(out.WeakLinks) > limit {
		out.WeakLinks = out.WeakLinks[:limit]
	}
	return c.JSON(out)
}
