package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// handlePostDrill stores a drill run as `keyfleet drill` reports it
// (audited: a drill revokes credentials, if only its own).
func (p *API) handlePostDrill(c *fiber.Ctx) error {
	var in control.DrillRun
	if err := httpapi.DecodeStrict(bytes.Clone(c.Body()), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if fe := validID("run_id", in.RunID, true); fe != nil {
		return fe.problem()
	}
	if !slices.Contains(control.DrillScenarios, in.Scenario) {
		return httpapi.BadRequest("scenario", "want one of "+strings.Join(control.DrillScenarios, ", "))
	}
	if in.StartedMs <= 0 || in.FinishedMs < in.StartedMs {
		return httpapi.BadRequest("finished_ms", "want started_ms > 0 and finished_ms ≥ started_ms")
	}
	if len(in.Report) > 0 && !json.Valid(in.Report) {
		return httpapi.BadRequest("report", "not JSON")
	}
	in.Actor = httpapi.Caller(c).Actor()
	ctx, cancel := p.ctx(c)
	defer cancel()
	if err := p.audit(ctx, in.Actor, "drill.record", in.RunID, map[string]string{"scenario": in.Scenario}); err != nil {
		return unavailable(err)
	}
	if err := store.InsertDrill(ctx, p.opts.Conn, in); err != nil {
		return unavailable(err)
	}
	c.Set(fiber.HeaderLocation, "/v1/drills?run_id="+in.RunID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"run_id": in.RunID, "stored": true})
}

// handleDrills lists drill runs, newest first; run_id returns one with its
// full report.
func (p *API) handleDrills(c *fiber.Ctx) error {
	now := p.opts.Now()
	q := store.DrillQuery{From: now.Add(-400 * 24 * time.Hour), To: now.Add(time.Minute), Limit: 100}
	if v := c.Query("scenario"); v != "" {
		if !slices.Contains(control.DrillScenarios, v) {
			return httpapi.BadRequest("scenario", "want one of "+strings.Join(control.DrillScenarios, ", "))
		}
		q.Scenario = strings.Clone(v)
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.Query(f.name); v != "" {
			ms, err := parseTime(v)
			if err != nil {
				return httpapi.BadRequest(f.name, err.Error())
			}
			*f.dst = time.UnixMilli(ms)
		}
	}
	if !q.To.After(q.From) {
		return httpapi.BadRequest("to", "must be after from")
	}
	q.Limit = c.QueryInt("limit", 100)
	if q.Limit < 1 || q.Limit > 1000 {
		return httpapi.BadRequest("limit", "want 1..1000")
	}
	runID := strings.Clone(c.Query("run_id"))
	q.RunID, q.WithReport = runID, runID != ""
	ctx, cancel := p.ctx(c)
	defer cancel()
	runs, err := store.Drills(ctx, p.opts.Conn, q)
	if err != nil {
		return unavailable(err)
	}
	if runID != "" {
		for _, r := range runs {
			if r.RunID == runID {
				return c.JSON(r)
			}
		}
		return httpapi.NewProblem(fiber.StatusNotFound, "drill_not_found", "no drill run "+runID)
	}
	return c.JSON(fiber.Map{"drills": runs, "count": len(runs)})
}
