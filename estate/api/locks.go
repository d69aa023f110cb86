package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/estate/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// LockInput is the body of POST /v1/locks and PUT /v1/locks/{vendor}/{id}.
type LockInput struct {
	registry.Lock
	Reason string `json:"reason,omitempty"`
}

// Assessment is a lock judged by the estate policy: the matrix row it is
// judged by (or the vendor default and why), its tier's requirement, what
// the tier demands that it cannot do and the cheapest upgrade.
type Assessment struct {
	Profile      string              `json:"profile"`
	Fallback     string              `json:"fallback,omitempty"`
	Capabilities estate.Capabilities `json:"capabilities"`
	Tier         estate.Requirement  `json:"tier"`
	Gaps         []estate.Gap        `json:"gaps"`
	Upgrade      *estate.Upgrade     `json:"upgrade,omitempty"`
}

// LockView is one lock with its assessment (and history on GET).
type LockView struct {
	Lock       registry.Record   `json:"lock"`
	Assessment *Assessment       `json:"assessment,omitempty"`
	Unchanged  bool              `json:"unchanged,omitempty"`
	History    []registry.Record `json:"history,omitempty"`
}

func (a *API) assess(l registry.Lock) *Assessment {
	el := grant.Lock(l)
	d, err := a.opts.Policy.Check(el, estate.Need{})
	if err != nil {
		return nil
	}
	as := &Assessment{Profile: d.Match.Name(), Fallback: d.Match.Fallback, Capabilities: d.Match.Capabilities, Tier: d.Tier,
		Gaps: []estate.Gap{}}
	if links, err := a.opts.Policy.WeakLinks([]estate.Lock{el}, nil); err == nil && len(links) == 1 {
		as.Gaps, as.Upgrade = links[0].Gaps, links[0].Upgrade
	}
	return as
}

// checkLock validates a lock the API writes: its fields and a tier the
// policy defines (the API never writes an unclassified lock).
func (a *API) checkLock(l registry.Lock) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if _, ok := a.opts.Policy.Tiers.Get(l.Tier); !ok {
		return fmt.Errorf("tier %d: want 1..%d (%s)", l.Tier, len(a.opts.Policy.Tiers), tierNames(a.opts.Policy.Tiers))
	}
	return nil
}

func tierNames(ts estate.Tiers) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = strconv.Itoa(t.Tier) + " " + t.Name
	}
	return strings.Join(parts, ", ")
}

func lockTarget(vendor, id string) string { return vendor + "/" + id }

func lockDetails(r registry.Record, prev uint64) map[string]string {
	return map[string]string{"site_id": r.SiteID, "zone_id": r.ZoneID, "door_id": r.DoorID, "groups": strings.Join(r.Groups, ";"),
		"model": r.Model, "firmware": r.Firmware, "tier": strconv.Itoa(r.Tier), "version": strconv.FormatUint(r.Version, 10),
		"previous_version": strconv.FormatUint(prev, 10), "reason": r.Reason}
}

func (a *API) handleCreate(c *fiber.Ctx) error {
	var in LockInput
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if err := a.checkLock(in.Lock); err != nil {
		return httpapi.BadRequest("lock", err.Error())
	}
	reg := a.opts.Locks.Registry()
	cur, exists := reg.Get(in.Vendor, in.LockID)
	if exists && !cur.Retired {
		pr := httpapi.NewProblem(fiber.StatusConflict, "lock_exists", "lock "+lockTarget(in.Vendor, in.LockID)+
			" is registered: change it with PUT "+PathLocks+"/"+in.Vendor+"/"+in.LockID)
		pr.Extra = map[string]any{"lock": cur}
		return pr
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	actor := httpapi.Caller(c).Actor()
	rec := registry.Record{Lock: in.Lock, Version: a.opts.Locks.NextVersion(in.Vendor, in.LockID), Op: registry.OpCreate,
		Actor: actor, Reason: in.Reason, TsMs: a.opts.Now().UnixMilli()}
	if err := a.audit(ctx, actor, "lock.create", lockTarget(in.Vendor, in.LockID), lockDetails(rec, cur.Version)); err != nil {
		return err
	}
	if err := a.opts.Locks.Publish(ctx, rec); err != nil {
		return unavailable(err)
	}
	a.cache.clear()
	return c.Status(fiber.StatusCreated).JSON(LockView{Lock: rec, Assessment: a.assess(rec.Lock)})
}

func (a *API) handleUpdate(c *fiber.Ctx) error {
	vendor, id, err := lockParams(c)
	if err != nil {
		return err
	}
	var in LockInput
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if (in.Vendor != "" && in.Vendor != vendor) || (in.LockID != "" && in.LockID != id) {
		return httpapi.BadRequest("lock_id", "the body's vendor and lock_id must be the path's (a lock cannot be renamed: register the new one and retire the old)")
	}
	in.Vendor, in.LockID = vendor, id
	if err := a.checkLock(in.Lock); err != nil {
		return httpapi.BadRequest("lock", err.Error())
	}
	cur, ok := a.opts.Locks.Registry().Get(vendor, id)
	switch {
	case !ok:
		return httpapi.NewProblem(fiber.StatusNotFound, "lock_not_found", "no lock "+lockTarget(vendor, id))
	case cur.Retired:
		return httpapi.NewProblem(fiber.StatusConflict, "lock_retired", "lock "+lockTarget(vendor, id)+
			" is retired: register it again with POST "+PathLocks)
	case cur.Lock.Same(in.Lock):
		return c.JSON(LockView{Lock: cur, Assessment: a.assess(cur.Lock), Unchanged: true})
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	actor := httpapi.Caller(c).Actor()
	rec := registry.Record{Lock: in.Lock, Version: a.opts.Locks.NextVersion(vendor, id), Op: registry.OpUpdate, Actor: actor,
		Reason: in.Reason, TsMs: a.opts.Now().UnixMilli()}
	details := lockDetails(rec, cur.Version)
	details["changed"] = strings.Join(changed(cur.Lock, in.Lock), ",")
	if err := a.audit(ctx, actor, "lock.update", lockTarget(vendor, id), details); err != nil {
		return err
	}
	if err := a.opts.Locks.Publish(ctx, rec); err != nil {
		return unavailable(err)
	}
	a.cache.clear()
	return c.JSON(LockView{Lock: rec, Assessment: a.assess(rec.Lock)})
}

// changed names the fields that differ.
func changed(a, b registry.Lock) []string {
	var out []string
	add := func(name string, diff bool) {
		if diff {
			out = append(out, name)
		}
	}
	add("site_id", a.SiteID != b.SiteID)
	add("zone_id", a.ZoneID != b.ZoneID)
	add("door_id", a.DoorID != b.DoorID)
	add("groups", !slices.Equal(a.Groups, b.Groups))
	add("model", a.Model != b.Model)
	add("firmware", a.Firmware != b.Firmware)
	add("tier", a.Tier != b.Tier)
	return out
}

// RetireInput is the body of POST /v1/locks:retire.
type RetireInput struct {
	Locks []struct {
		Vendor string `json:"vendor"`
		LockID string `json:"lock_id"`
	} `json:"locks"`
	Reason string `json:"reason"`
}

// MaxRetire bounds one retire request (each lock is audited on its own).
const MaxRetire = 1000

func (a *API) handleRetire(c *fiber.Ctx) error {
	var in RetireInput
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if len(in.Locks) == 0 || len(in.Locks) > MaxRetire {
		return httpapi.BadRequest("locks", fmt.Sprintf("want 1..%d locks", MaxRetire))
	}
	reg := a.opts.Locks.Registry()
	var recs []registry.Record
	var prev []uint64
	var fes []httpapi.FieldError
	now := a.opts.Now().UnixMilli()
	actor := httpapi.Caller(c).Actor()
	for i, l := range in.Locks {
		cur, ok := reg.Get(l.Vendor, l.LockID)
		idx := i
		switch {
		case !ok:
			fes = append(fes, httpapi.FieldError{Field: "locks", Index: &idx, Reason: "no lock " + lockTarget(l.Vendor, l.LockID)})
		case cur.Retired:
			fes = append(fes, httpapi.FieldError{Field: "locks", Index: &idx, Reason: "lock " + lockTarget(l.Vendor, l.LockID) + " is already retired"})
		default:
			recs = append(recs, registry.Record{Lock: cur.Lock, Version: a.opts.Locks.NextVersion(l.Vendor, l.LockID), Retired: true,
				Op: registry.OpRetire, Actor: actor, Reason: in.Reason, TsMs: now})
			prev = append(prev, cur.Version)
		}
	}
	if len(fes) > 0 {
		pr := httpapi.NewProblem(fiber.StatusUnprocessableEntity, "locks_not_retirable", fmt.Sprintf("%d of %d locks cannot be retired; nothing was retired", len(fes), len(in.Locks)))
		pr.Errors = fes
		return pr
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	for i, r := range recs {
		if err := a.audit(ctx, actor, "lock.retire", lockTarget(r.Vendor, r.LockID), lockDetails(r, prev[i])); err != nil {
			return err
		}
	}
	if err := a.opts.Locks.Publish(ctx, recs...); err != nil {
		return unavailable(err)
	}
	a.cache.clear()
	return c.JSON(fiber.Map{"retired": recs, "count": len(recs)})
}

// ImportResult answers POST /v1/locks:import.
type ImportResult struct {
	Rows      int `json:"rows"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Retired   int `json:"retired"`
	Unchanged int `json:"unchanged"`
}

func (a *API) handleImport(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	ctype, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	var rows []registry.Row
	var err error
	switch {
	case strings.Contains(ctype, "csv"):
		rows, err = registry.ParseCSV(body)
	case ctype == "" || strings.Contains(ctype, "json"):
		rows, err = registry.ParseJSON(body)
	default:
		return httpapi.NewProblem(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send CSV (text/csv) or a JSON array (application/json)")
	}
	var fes []httpapi.FieldError
	bad := map[int]bool{}
	for _, e := range joined(err) {
		var re *registry.RowError
		if errors.As(e, &re) {
			line := re.Line
			bad[line] = true
			fes = append(fes, httpapi.FieldError{Field: "line", Index: &line, Reason: re.Err.Error()})
		} else {
			return httpapi.BadRequest("body", e.Error())
		}
	}
	if len(rows) == 0 && len(fes) == 0 {
		return httpapi.BadRequest("body", "no locks in the request")
	}
	reg := a.opts.Locks.Registry()
	for _, r := range rows {
		if bad[r.Line] {
			continue
		}
		if _, exists := reg.Get(r.Vendor, r.LockID); r.Retired && !exists {
			line := r.Line
			fes = append(fes, httpapi.FieldError{Field: "line", Index: &line, Reason: "retired: no lock " + lockTarget(r.Vendor, r.LockID)})
			continue
		}
		if err := a.checkLock(r.Lock); !r.Retired && err != nil && len(fes) < 100 {
			line := r.Line
			fes = append(fes, httpapi.FieldError{Field: "line", Index: &line, Reason: err.Error()})
		}
	}
	if len(fes) > 0 {
		pr := httpapi.NewProblem(fiber.StatusBadRequest, "invalid_locks", fmt.Sprintf("%d row(s) refused; nothing was imported", len(fes)))
		pr.Errors = fes
		return pr
	}
	now := a.opts.Now().UnixMilli()
	actor := httpapi.Caller(c).Actor()
	res := ImportResult{Rows: len(rows)}
	var recs []registry.Record
	for _, r := range rows {
		cur, exists := reg.Get(r.Vendor, r.LockID)
		rec := registry.Record{Lock: r.Lock, Op: registry.OpImport, Actor: actor, Reason: r.Reason, TsMs: now}
		switch {
		case r.Retired && cur.Retired:
			res.Unchanged++
			continue
		case r.Retired:
			rec.Lock, rec.Retired, rec.Op = cur.Lock, true, registry.OpRetire
			res.Retired++
		case !exists || cur.Retired:
			res.Created++
		case cur.Lock.Same(r.Lock):
			res.Unchanged++
			continue
		default:
			res.Updated++
		}
		rec.Version = a.opts.Locks.NextVersion(r.Vendor, r.LockID)
		recs = append(recs, rec)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	sum := sha256.Sum256(body)
	if err := a.audit(ctx, actor, "lock.import", "lock_registry", map[string]string{"rows": strconv.Itoa(res.Rows),
		"created": strconv.Itoa(res.Created), "updated": strconv.Itoa(res.Updated), "retired": strconv.Itoa(res.Retired),
		"unchanged": strconv.Itoa(res.Unchanged), "body_sha256": hex.EncodeToString(sum[:])}); err != nil {
		return err
	}
	if err := a.opts.Locks.Publish(ctx, recs...); err != nil {
		return unavailable(err)
	}
	a.cache.clear()
	return c.JSON(res)
}

func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (a *API) handleExport(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "format", "retired")
	if err != nil {
		return err
	}
	withRetired, err := boolParam(v, "retired")
	if err != nil {
		return err
	}
	caller := httpapi.Caller(c)
	var recs []registry.Record
	for _, r := range a.opts.Locks.Registry().Records() {
		if (withRetired || !r.Retired) && caller.InScope(r.SiteID) {
			recs = append(recs, r)
		}
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	f := v["format"]
	if f == "" {
		f = "json"
	}
	if f != "json" && f != "csv" {
		return httpapi.BadRequest("format", "format must be csv or json")
	}
	if err := a.audit(ctx, httpapi.Caller(c).Actor(), "lock.export", "lock_registry", map[string]string{
		"format": f, "locks": strconv.Itoa(len(recs))}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="keyfleet-locks.`+f+`"`)
	if f == "csv" {
		var b bytes.Buffer
		if err := registry.WriteCSV(&b, recs); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		return c.Send(b.Bytes())
	}
	if recs == nil {
		recs = []registry.Record{}
	}
	data, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(data)
}

func boolParam(v map[string]string, name string) (bool, error) {
	s, ok := v[name]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, httpapi.BadRequest(name, name+" must be true or false")
	}
	return b, nil
}

func (a *API) handleList(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "vendor", "site", "group", "tier", "retired", "limit")
	if err != nil {
		return err
	}
	withRetired, err := boolParam(v, "retired")
	if err != nil {
		return err
	}
	limit := 1000
	if s := v["limit"]; s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > registry.MaxRows {
			return httpapi.BadRequest("limit", fmt.Sprintf("limit must be an integer in 1..%d", registry.MaxRows))
		}
	}
	tier := -1
	if s := v["tier"]; s != "" {
		if tier, err = strconv.Atoi(s); err != nil || tier < 0 {
			return httpapi.BadRequest("tier", "tier must be a number (0: not recorded)")
		}
	}
	sites, err := httpapi.Caller(c).SiteFilter(v["site"])
	if err != nil {
		return err
	}
	out := []registry.Record{}
	total := 0
	for _, r := range a.opts.Locks.Registry().Records() {
		if (len(sites) > 0 && !slices.Contains(sites, r.SiteID)) || (r.Retired && !withRetired) || (v["vendor"] != "" && r.Vendor != v["vendor"]) || (v["site"] != "" && r.SiteID != v["site"]) ||
			(v["group"] != "" && !slices.Contains(r.Groups, v["group"])) || (tier >= 0 && r.Tier != tier) {
			continue
		}
		total++
		if len(out) < limit {
			out = append(out, r)
		}
	}
	return c.JSON(fiber.Map{"locks": out, "count": len(out), "total": total})
}

func (a *API) handleGet(c *fiber.Ctx) error {
	vendor, id, err := lockParams(c)
	if err != nil {
		return err
	}
	cur, ok := a.opts.Locks.Registry().Get(vendor, id)
	if !ok || !httpapi.Caller(c).InScope(cur.SiteID) {
		return httpapi.NewProblem(fiber.StatusNotFound, "lock_not_found", "no lock "+lockTarget(vendor, id))
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	hist, err := store.History(ctx, a.opts.Conn, vendor, id, 50)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(LockView{Lock: cur, Assessment: a.assess(cur.Lock), History: hist})
}

func (a *API) handleMatrix(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"profiles": a.opts.Policy.Matrix, "tiers": a.opts.Policy.Tiers})
}
