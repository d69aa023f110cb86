package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/estate/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
)

func (a *API) handleMigrate(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "dry_run")
	if err != nil {
		return err
	}
	dry, err := boolParam(v, "dry_run")
	if err != nil {
		return err
	}
	var req migrate.Request
	if err := httpapi.DecodeStrict(c.Body(), &req); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	select {
	case <-a.opts.Credentials.Ready():
	default:
		c.Set(fiber.HeaderRetryAfter, "2")
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "starting", "the control plane is rebuilding its state")
	}
	reg := a.opts.Locks.Registry()
	plan, err := migrate.NewPlan(req, reg.Get)
	if err == nil {
		for _, l := range plan.New {
			if cerr := a.checkLock(l); cerr != nil {
				err = fmt.Errorf("new lock %s: %w", lockTarget(l.Vendor, l.LockID), cerr)
				break
			}
		}
	}
	if err != nil {
		var fes []httpapi.FieldError
		for _, e := range joined(err) {
			fes = append(fes, httpapi.FieldError{Field: "locks", Reason: e.Error()})
		}
		pr := httpapi.NewProblem(fiber.StatusUnprocessableEntity, "invalid_migration", "the migration cannot be planned: "+err.Error())
		pr.Errors = fes
		return pr
	}
	affected := plan.Affected(a.opts.Credentials.Each)
	resp := migrate.Started{DryRun: dry, Plan: plan, WeakLinks: []estate.WeakLink{}}
	var moves []migrate.Move
	for _, m := range affected {
		resp.Credentials++
		if !migrate.OnLocks(m.State) {
			resp.Deferred++
		}
		for _, mv := range m.Moves {
			moves = append(moves, migrate.Move{CredentialID: m.CredentialID, State: m.State, From: mv.From, To: mv.To})
		}
	}
	var newLocks []estate.Lock
	for _, l := range plan.New {
		newLocks = append(newLocks, grant.Lock(l))
	}
	if links, err := a.opts.Policy.WeakLinks(newLocks, nil); err == nil && links != nil {
		resp.WeakLinks = links
	}
	if dry {
		return c.JSON(resp)
	}

	ctx, cancel := a.ctx(c)
	defer cancel()
	actor := httpapi.Caller(c).Actor()
	now := a.opts.Now()
	h := migrate.Head{MigrationID: uuid.NewString(), FromVendor: req.FromVendor, ToVendor: req.ToVendor, RequestedMs: now.UnixMilli(),
		Actor: actor, Reason: req.Reason, Locks: len(plan.New), Credentials: resp.Credentials}
	if err := a.audit(ctx, actor, "estate.migrate", h.MigrationID, map[string]string{"from_vendor": h.FromVendor,
		"to_vendor": h.ToVendor, "locks": strconv.Itoa(h.Locks), "credentials": strconv.Itoa(h.Credentials),
		"deferred": strconv.Itoa(resp.Deferred), "reason": req.Reason}); err != nil {
		return err
	}
	// The new locks first, then the old ones out of service: from here on
	// new grants land on the new locks; the moves carry their own mapping.
	why := "vendor migration " + h.MigrationID
	if req.Reason != "" {
		why += ": " + req.Reason
	}
	recs := make([]registry.Record, 0, 2*len(plan.New))
	for _, l := range plan.New {
		op := registry.OpCreate
		if cur, ok := reg.Get(l.Vendor, l.LockID); ok && !cur.Retired {
			op = registry.OpUpdate
		}
		recs = append(recs, registry.Record{Lock: l, Version: a.opts.Locks.NextVersion(l.Vendor, l.LockID), Op: op, Actor: actor,
			Reason: why, TsMs: h.RequestedMs})
	}
	for _, l := range plan.Old {
		recs = append(recs, registry.Record{Lock: l, Version: a.opts.Locks.NextVersion(l.Vendor, l.LockID), Retired: true,
			Op: registry.OpRetire, Actor: actor, Reason: why, TsMs: h.RequestedMs})
	}
	if err := a.opts.Locks.Publish(ctx, recs...); err != nil {
		return unavailable(err)
	}
	a.cache.clear()
	if err := store.InsertMigration(ctx, a.opts.Conn, h, plan); err != nil {
		return unavailable(err)
	}
	if err := store.InsertMoves(ctx, a.opts.Conn, h, moves); err != nil {
		return unavailable(err)
	}
	cmds := make([]control.Command, 0, len(affected))
	for _, m := range affected {
		cmds = append(cmds, control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpUpdate, CredentialID: m.CredentialID,
			Actor: actor, Reason: why, TsMs: h.RequestedMs, Moves: m.Moves})
	}
	for i := 0; i < len(cmds); i += 5000 {
		if err := a.opts.Credentials.Publish(ctx, cmds[i:min(i+5000, len(cmds))]...); err != nil {
			return unavailable(err)
		}
	}
	resp.MigrationID, resp.StatusURL = h.MigrationID, PathMigrations+"/"+h.MigrationID
	c.Set(fiber.HeaderLocation, resp.StatusURL)
	return c.Status(fiber.StatusAccepted).JSON(resp)
}

func (a *API) handleMigrations(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "limit")
	if err != nil {
		return err
	}
	limit := 100
	if s := v["limit"]; s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return httpapi.BadRequest("limit", "limit must be an integer in 1..1000")
		}
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	list, err := store.Migrations(ctx, a.opts.Conn, limit)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"migrations": list, "count": len(list)})
}

func (a *API) handleMigration(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" || len(id) > 64 {
		return httpapi.BadRequest("id", "invalid migration id")
	}
	id = strings.Clone(id)
	ctx, cancel := a.ctx(c)
	defer cancel()
	h, moves, acks, ok, err := store.Migration(ctx, a.opts.Conn, id)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return httpapi.NewProblem(fiber.StatusNotFound, "migration_not_found", "no migration "+id)
	}
	return c.JSON(migrate.Progress(h, moves, acks, a.opts.Now(), a.opts.PendingSLA))
}
