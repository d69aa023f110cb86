package query

import (
	"context"
	"fmt"
	"slices"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

var kpisOp = openapi.Operation{
	Description: "Fleet KPIs over [from, to): access KPIs (distinct events by action and outcome, denial " +
		"rate, active subjects/doors/locks, unattested and break-glass uses) and pipeline KPIs (dead " +
		"letters by reason) computed here; credential KPIs (revocation latency, time to issue, activation, " +
		"exceptions, pending locks) from the control plane when it is wired in (credentials is null otherwise). " +
		"With slice= or a filter (site, vendor, lock_model, lock_firmware, phone_model, os_name, os_version, app_version), " +
		"total holds the KPIs of the filtered events and credentials (denied share, support-relevant failures, activation rate, " +
		"time to issue, revocation latency per lock, exceptions per 1,000) and slices the same per value of the slice dimension; " +
		"a KPI its source cannot be cut by is null and not_sliced says why. A site-scoped token gets total and slices of its " +
		"sites only (access, pipeline and credentials, which are fleet-wide, are null).",
	Params: append(rangeParams("now-7d"), sliceParams()...),
	Responses: map[int]openapi.Response{200: {Description: "the KPIs",
		Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
			"from_ms": map[string]any{"type": "integer"}, "to_ms": map[string]any{"type": "integer"},
			"access": map[string]any{"type": "object"}, "pipeline": map[string]any{"type": "object"},
			"credentials": map[string]any{"type": "object", "nullable": true},
			"slice":       map[string]any{"type": "string", "enum": SliceDims},
			"filters":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
			"total":       map[string]any{"type": "object"},
			"slices":      map[string]any{"type": "array", "items": map[string]any{"type": "object"}},
			"not_sliced":  map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		}}}}},
}

// AccessKPIs are computed from access_events (dedup-safe).
type AccessKPIs struct {
	Events           uint64            `json:"events"`
	ByOutcome        map[string]uint64 `json:"by_outcome"`
	ByAction         map[string]uint64 `json:"by_action"`
	DenialRate       float64           `json:"denial_rate"` // denied / (granted + denied)
	ActiveSubjects   uint64            `json:"active_subjects"`
	ActiveDoors      uint64            `json:"active_doors"`
	ActiveLocks      uint64            `json:"active_locks"`
	UnattestedUses   uint64            `json:"unattested_uses"`
	BreakGlassUses   uint64            `json:"break_glass_uses"`
	EmergencyUnlocks uint64            `json:"emergency_unlocks"`
}

// PipelineKPIs are computed from dead_letters.
type PipelineKPIs struct {
	DeadLetters    uint64            `json:"dead_letters"`
	ByReason       map[string]uint64 `json:"dead_letters_by_reason"`
	DeadLetterRate float64           `json:"dead_letter_rate"` // dead letters / (events + dead letters)
}

type kpis struct {
	FromMs           int64         `json:"from_ms"`
	ToMs             int64         `json:"to_ms"`
	Access           *AccessKPIs   `json:"access"`
	Pipeline         *PipelineKPIs `json:"pipeline"`
	Credentials      any           `json:"credentials"`
	CredentialsError string        `json:"credentials_error,omitempty"`
	// The sliced KPIs (slice=, filters, or a site-scoped caller).
	*Slicing
}

func (s *Service) handleKPIs(c *fiber.Ctx) error {
	v, err := s.parse(c, kpisOp)
	if err != nil {
		return err
	}
	r, err := s.timeRange(v)
	if err != nil {
		return err
	}
	dim := v.String("slice")
	filters := map[string][]string{}
	for _, f := range sliceFilters {
		if vals := v.List(f); len(vals) > 0 {
			filters[f] = slices.Clone(vals)
		}
	}
	p := httpapi.Caller(c)
	if p.Scoped() {
		for _, site := range filters["site"] {
			if !p.InScope(site) {
				return httpapi.OutOfScope("site " + site)
			}
		}
		if len(filters["site"]) == 0 {
			filters["site"] = slices.Clone(p.Sites)
		}
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	out := &kpis{FromMs: r.from, ToMs: r.to}
	if !p.Scoped() {
		if out, err = s.kpis(ctx, r); err != nil {
			return s.queryError(PathKPIs, err)
		}
	} else {
		out.CredentialsError = "fleet-wide KPIs are not shown to a site-scoped token: see total and slices"
	}
	if dim != "" || len(filters) > 0 {
		if out.Slicing, err = s.slicing(ctx, r, dim, filters); err != nil {
			return s.queryError(PathKPIs, err)
		}
	}
	return c.JSON(out)
}

var (
	accessKPIsSQL          = chstorage.Query("query/access_kpis")
	deadLettersByReasonSQL = chstorage.Query("query/dead_letters_by_reason")
)

func (s *Service) kpis(ctx context.Context, r timeRange) (*kpis, error) {
	out := &kpis{FromMs: r.from, ToMs: r.to,
		Access:   &AccessKPIs{ByOutcome: map[string]uint64{}, ByAction: map[string]uint64{}},
		Pipeline: &PipelineKPIs{ByReason: map[string]uint64{}}}
	g, gctx := errgroup.WithContext(ctx)
	for _, by := range []string{"outcome", "action"} {
		dst := out.Access.ByOutcome
		if by == "action" {
			dst = out.Access.ByAction
		}
		g.Go(func() error {
			res, err := s.summarize(gctx, summaryQuery{r: r, sel: selection{}, bucket: "all", by: by, top: 1000})
			if err != nil {
				return err
			}
			for _, ser := range res.Series {
				dst[ser.Key] = ser.Total
			}
			return nil
		})
	}
	g.Go(func() error {
		a := out.Access
		if err := accessKPIsSQL.QueryRow(gctx, s.opts.Conn, r.args(chstorage.Args{})).Scan(&a.ActiveSubjects, &a.ActiveDoors, &a.ActiveLocks,
			&a.UnattestedUses, &a.BreakGlassUses, &a.EmergencyUnlocks); err != nil {
			return fmt.Errorf("access kpis: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		rows, err := deadLettersByReasonSQL.Query(gctx, s.opts.Conn, r.args(chstorage.Args{}))
		if err != nil {
			return fmt.Errorf("pipeline kpis: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var reason string
			var n uint64
			if err := rows.Scan(&reason, &n); err != nil {
				return fmt.Errorf("pipeline kpis: %w", err)
			}
			out.Pipeline.ByReason[reason] = n
			out.Pipeline.DeadLetters += n
		}
		return rows.Err()
	})
	if s.opts.KPIs != nil {
		g.Go(func() error {
			cred, err := s.opts.KPIs.KPIs(gctx, timeMs(r.from), timeMs(r.to))
			if err != nil {
				if gctx.Err() != nil {
					return err
				}
				s.opts.Logger.Warn("credential kpis unavailable", "err", err)
				out.CredentialsError = "the control plane's KPIs could not be computed"
				return nil
			}
			out.Credentials = cred
			return nil
		})
	} else {
		out.CredentialsError = "the control plane's KPIs are not wired into this service"
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	a := out.Access
	for _, n := range a.ByOutcome {
		a.Events += n
	}
	if d := a.ByOutcome["granted"] + a.ByOutcome["denied"]; d > 0 {
		a.DenialRate = float64(a.ByOutcome["denied"]) / float64(d)
	}
	if t := a.Events + out.Pipeline.DeadLetters; t > 0 {
		out.Pipeline.DeadLetterRate = float64(out.Pipeline.DeadLetters) / float64(t)
	}
	return out, nil
}
