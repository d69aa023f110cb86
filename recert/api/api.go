// Package api serves access recertification over HTTP (managers of a site,
// site-scoped tokens included) and enforces campaign deadlines (Enforcer):
// a reviewer's revocation and a deadline's suspension go to the control
// plane as commands; every decision is audited.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	cstore "github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/recert"
	"github.com/keyfleet/keyfleet/recert/store"
)

// Credentials is the control plane's state (control/stream.Processor).
type Credentials interface {
	Ready() <-chan struct{}
	Record(id string) (*control.Record, bool)
	Each(fn func(r *control.Record))
	Publish(ctx context.Context, cmds ...control.Command) error
}

// Options configure the API and the enforcer.
type Options struct {
	Credentials Credentials
	Conn        driver.Conn
	Audit       audit.Appender
	// OnDeadline is a new campaign's default (recert.OnDeadlineSuspend).
	OnDeadline string
	// Every is how often the enforcer looks for campaigns past their
	// deadline (default 1 min).
	Every   time.Duration
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Credentials == nil || o.Conn == nil || o.Audit == nil {
		return errors.New("recert api: Credentials, Conn and Audit are required")
	}
	if o.OnDeadline == "" {
		o.OnDeadline = recert.OnDeadlineSuspend
	}
	if o.OnDeadline != recert.OnDeadlineSuspend && o.OnDeadline != recert.OnDeadlineNone {
		return fmt.Errorf("recert: on-deadline %q: want suspend or none", o.OnDeadline)
	}
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// API serves /v1/recertifications.
type API struct{ opts Options }

// New returns the API.
func New(opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &API{opts: opts}, nil
}

// Route paths.
const (
	PathCampaigns = "/v1/recertifications"
	PathCampaign  = "/v1/recertifications/:id"
	PathDecide    = `/v1/recertifications/:id\:decide`
)

// Routes returns the recertification routes (managers; site-scoped).
func (a *API) Routes() []httpapi.Route {
	r := func(method, path, summary string, h fiber.Handler) httpapi.Route {
		return httpapi.Route{Method: method, Path: path, Summary: summary, Roles: httpapi.ManageRoles, Handler: a.whenReady(h), SiteScoped: true}
	}
	return []httpapi.Route{
		r(fiber.MethodPost, PathCampaigns, "Open an access recertification of a site: every live credential there, to confirm or revoke by a deadline (audited).", a.handleCreate),
		r(fiber.MethodGet, PathCampaigns, "Recertification campaigns, newest first (site, limit), with their counts.", a.handleList),
		r(fiber.MethodGet, PathCampaign, "A recertification campaign: its items (who has access, with which role and door groups) and their decisions.", a.handleGet),
		r(fiber.MethodPost, PathDecide, "Confirm or revoke one item of a campaign (audited; a revocation goes to the control plane).", a.handleDecide),
	}
}

// ListResponse is the answer of GET /v1/recertifications.
type ListResponse struct {
	Campaigns []CampaignView `json:"campaigns"`
	Count     int            `json:"count"`
}

// DecideResponse is the answer of a decision.
type DecideResponse struct {
	Item          recert.Item `json:"item"`
	RevocationID  string      `json:"revocation_id,omitempty"`
	RevocationURL string      `json:"revocation_url,omitempty"`
}

// Operations describes the routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	ops := a.operations()
	set := func(key string, code int, desc string, v any) {
		op := ops[key]
		op.Responses = map[int]openapi.Response{code: {Description: desc, Content: openapi.JSON(openapi.ResponseSchema(v, nil))}}
		ops[key] = op
	}
	set(openapi.Key(fiber.MethodPost, PathCampaigns), 201, "the campaign and its items", CampaignView{})
	set(openapi.Key(fiber.MethodGet, PathCampaigns), 200, "campaigns with their counts", ListResponse{})
	set(openapi.Key(fiber.MethodGet, PathCampaign), 200, "the campaign and its items", CampaignView{})
	set(openapi.Key(fiber.MethodPost, PathDecide), 200, "the decided item", DecideResponse{})
	return ops
}

func (a *API) operations() map[string]openapi.Operation {
	str := map[string]any{"type": "string"}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, PathCampaigns): {
			Description: "Snapshots the site's live credentials (issued, pending activation, active, suspended) as the campaign's items. " +
				"At the deadline every item nobody decided is suspended (on_deadline suspend, the default from --recert-on-deadline) " +
				"or recorded as lapsed (none); each suspension is a control-plane command and an audit entry.",
			Body: map[string]any{"type": "object", "required": []string{"site_id", "deadline_ms"}, "properties": map[string]any{
				"site_id": str, "deadline_ms": map[string]any{"type": "integer", "description": "1 hour to 180 days ahead"},
				"on_deadline": map[string]any{"type": "string", "enum": recert.OnDeadlines}}},
		},
		openapi.Key(fiber.MethodGet, PathCampaigns): {
			Params: []openapi.Param{{Name: "site"}, {Name: "limit", Type: openapi.TypeInteger, Default: "100", Min: 1, Max: 1000}},
		},
		openapi.Key(fiber.MethodGet, PathCampaign): {Params: []openapi.Param{{Name: "id", In: "path", Required: true}}},
		openapi.Key(fiber.MethodPost, PathDecide): {
			Description: "A decision is final. revoked revokes the credential through the control plane (its revocation is tracked at " +
				"/v1/revocations/{id}); a decision after the deadline counts until the deadline is enforced.",
			Params: []openapi.Param{{Name: "id", In: "path", Required: true}},
			Body: map[string]any{"type": "object", "required": []string{"credential_id", "decision"}, "properties": map[string]any{
				"credential_id": str, "decision": map[string]any{"type": "string", "enum": []string{recert.Confirmed, recert.Revoked}},
				"note": str}},
		},
	}
}

func (a *API) whenReady(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		select {
		case <-a.opts.Credentials.Ready():
			return h(c)
		default:
			c.Set(fiber.HeaderRetryAfter, "2")
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "starting", "the control plane is rebuilding its state")
		}
	}
}

func (a *API) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	if err := a.opts.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: target, Details: details,
		TsMs: a.opts.Now().UnixMilli()}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable", "audit log unavailable, change not carried out: "+err.Error())
	}
	return nil
}

// reviewed are the states whose credentials a campaign reviews.
var reviewed = []string{event.StateIssued, event.StatePendingActivation, event.StateActive, event.StateSuspended}

// CampaignView is a campaign with its items and counts.
type CampaignView struct {
	recert.Campaign
	Status string        `json:"status"`
	Counts recert.Counts `json:"counts"`
	Items  []recert.Item `json:"items,omitempty"`
}

func (a *API) handleCreate(c *fiber.Ctx) error {
	var in struct {
		SiteID     string `json:"site_id"`
		DeadlineMs int64  `json:"deadline_ms"`
		OnDeadline string `json:"on_deadline"`
	}
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	caller := httpapi.Caller(c)
	now := a.opts.Now().UnixMilli()
	camp := recert.Campaign{ID: "rc-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16], SiteID: in.SiteID, CreatedMs: now,
		DeadlineMs: in.DeadlineMs, CreatedBy: caller.Actor(), OnDeadline: in.OnDeadline, Version: uint64(now)}
	if camp.OnDeadline == "" {
		camp.OnDeadline = a.opts.OnDeadline
	}
	if err := camp.Validate(now); err != nil {
		return httpapi.BadRequest("campaign", err.Error())
	}
	if !caller.InScope(camp.SiteID) {
		return httpapi.OutOfScope("site " + camp.SiteID)
	}
	var items []recert.Item
	a.opts.Credentials.Each(func(r *control.Record) {
		if r.SiteID == camp.SiteID && containsState(r.State) {
			items = append(items, recert.Item{CredentialID: r.CredentialID, SubjectID: r.SubjectID, Role: r.Role, State: r.State,
				DoorGroups: append([]string(nil), r.DoorGroups...)})
		}
	})
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	if err := a.audit(ctx, camp.CreatedBy, "recert.open", "recert/"+camp.ID, map[string]string{"site_id": camp.SiteID,
		"deadline_ms": strconv.FormatInt(camp.DeadlineMs, 10), "on_deadline": camp.OnDeadline, "items": strconv.Itoa(len(items))}); err != nil {
		return err
	}
	// Items first: a campaign row without its items would read as empty.
	if err := store.PutItems(ctx, a.opts.Conn, camp.ID, items); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	if err := store.PutCampaign(ctx, a.opts.Conn, camp); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	if items == nil {
		items = []recert.Item{}
	}
	return c.Status(fiber.StatusCreated).JSON(CampaignView{Campaign: camp, Status: camp.StatusAt(now), Counts: recert.Count(items), Items: items})
}

func containsState(s string) bool {
	for _, r := range reviewed {
		if r == s {
			return true
		}
	}
	return false
}

func (a *API) handleList(c *fiber.Ctx) error {
	ops := a.operations()[openapi.Key(fiber.MethodGet, PathCampaigns)]
	v, err := openapi.Parse(ops.Params, openapi.Args(c), a.opts.Now().UTC())
	if err != nil {
		return err
	}
	sites, err := httpapi.Caller(c).SiteFilter(v.String("site"))
	if err != nil {
		return err
	}
	limit := 100
	if v.Has("limit") {
		limit = int(v.Int("limit"))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	cs, err := store.Campaigns(ctx, a.opts.Conn, store.Filter{Sites: sites, Limit: limit})
	if err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	now := a.opts.Now().UnixMilli()
	out := make([]CampaignView, 0, len(cs))
	for _, camp := range cs {
		_, items, err := store.Campaign(ctx, a.opts.Conn, camp.ID)
		if err != nil {
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
		}
		out = append(out, CampaignView{Campaign: camp, Status: camp.StatusAt(now), Counts: recert.Count(items)})
	}
	return c.JSON(ListResponse{Campaigns: out, Count: len(out)})
}

func (a *API) campaign(c *fiber.Ctx) (recert.Campaign, []recert.Item, error) {
	id, err := httpapi.PathParam(c, "id")
	if err != nil {
		return recert.Campaign{}, nil, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	camp, items, err := store.Campaign(ctx, a.opts.Conn, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !httpapi.Caller(c).InScope(camp.SiteID)) {
		return camp, nil, httpapi.NewProblem(fiber.StatusNotFound, "campaign_not_found", "no recertification campaign "+id)
	}
	if err != nil {
		return camp, nil, httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	return camp, items, nil
}

func (a *API) handleGet(c *fiber.Ctx) error {
	camp, items, err := a.campaign(c)
	if err != nil {
		return err
	}
	return c.JSON(CampaignView{Campaign: camp, Status: camp.StatusAt(a.opts.Now().UnixMilli()), Counts: recert.Count(items), Items: items})
}

func (a *API) handleDecide(c *fiber.Ctx) error {
	camp, items, err := a.campaign(c)
	if err != nil {
		return err
	}
	var in struct {
		CredentialID string `json:"credential_id"`
		Decision     string `json:"decision"`
		Note         string `json:"note"`
	}
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if len(in.Note) > 2000 {
		return httpapi.BadRequest("note", "at most 2000 characters")
	}
	var item *recert.Item
	for i := range items {
		if items[i].CredentialID == in.CredentialID {
			item = &items[i]
		}
	}
	if item == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "item_not_found", "credential "+in.CredentialID+" is not under review in "+camp.ID)
	}
	if err := recert.CheckDecision(camp, *item, in.Decision); err != nil {
		if errors.Is(err, recert.ErrClosed) || errors.Is(err, recert.ErrDecided) {
			return httpapi.NewProblem(fiber.StatusConflict, "not_decidable", err.Error())
		}
		return httpapi.BadRequest("decision", err.Error())
	}
	actor := httpapi.Caller(c).Actor()
	now := a.opts.Now().UnixMilli()
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	details := map[string]string{"campaign_id": camp.ID, "site_id": camp.SiteID, "subject_id": item.SubjectID, "decision": in.Decision}
	var cmd *control.Command
	if in.Decision == recert.Revoked {
		cur, ok := a.opts.Credentials.Record(item.CredentialID)
		if ok && lifecycle.IsLive(cur.State) {
			cmd = &control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpRevoke, CredentialID: item.CredentialID,
				RequestID: uuid.NewString(), Actor: actor, Reason: "access recertification " + camp.ID + ": " + in.Note, TsMs: now,
				RevocationID: uuid.NewString(), Scope: control.ScopeCredential}
			details["revocation_id"] = cmd.RevocationID
		}
	}
	if err := a.audit(ctx, actor, "recert."+in.Decision, item.CredentialID, details); err != nil {
		return err
	}
	if cmd != nil {
		if err := a.opts.Credentials.Publish(ctx, *cmd); err != nil {
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
		}
		if err := cstore.InsertRevocationHeads(ctx, a.opts.Conn, cstore.RevocationHead{RevocationID: cmd.RevocationID,
			Scope: control.ScopeCredential, SubjectID: item.SubjectID, CredentialIDs: []string{item.CredentialID},
			RequestedMs: now, Actor: actor, Reason: cmd.Reason}); err != nil {
			a.opts.Logger.Warn("revocation request not stored", "err", err)
		}
	}
	if err := store.PutDecisions(ctx, a.opts.Conn, camp.ID, store.Decision{CredentialID: item.CredentialID, Decision: in.Decision,
		Actor: actor, Note: in.Note, TsMs: now, Version: uint64(now)}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	item.Decision, item.DecidedBy, item.DecidedMs, item.Note = in.Decision, actor, now, in.Note
	out := DecideResponse{Item: *item}
	if cmd != nil {
		out.RevocationID, out.RevocationURL = cmd.RevocationID, "/v1/revocations/"+cmd.RevocationID
	}
	return c.JSON(out)
}

// Enforce enforces the deadline of every campaign past it at now: each
// undecided item whose credential is active is suspended (on_deadline
// suspend), the others recorded as lapsed, every one audited, then the
// campaign is closed. It returns the campaigns it closed.
func (a *API) Enforce(ctx context.Context) ([]string, error) {
	now := a.opts.Now().UnixMilli()
	due, err := store.Campaigns(ctx, a.opts.Conn, store.Filter{DueMs: now, Limit: 1000})
	if err != nil {
		return nil, err
	}
	var closed []string
	for _, camp := range due {
		_, items, err := store.Campaign(ctx, a.opts.Conn, camp.ID)
		if err != nil {
			return closed, err
		}
		var cmds []control.Command
		var ds []store.Decision
		for _, it := range recert.Undecided(items) {
			d := store.Decision{CredentialID: it.CredentialID, Decision: recert.Lapsed, Actor: "system:recert", TsMs: now, Version: uint64(now)}
			cur, ok := a.opts.Credentials.Record(it.CredentialID)
			switch {
			case camp.OnDeadline != recert.OnDeadlineSuspend:
				d.Note = "not confirmed by the deadline (the campaign suspends nothing)"
			case ok && cur.State == event.StateActive:
				d.Decision, d.Note = recert.Suspended, "not confirmed by the deadline"
				cmds = append(cmds, control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpSuspend, CredentialID: it.CredentialID,
					RequestID: uuid.NewString(), Actor: "system:recert", Reason: "access recertification " + camp.ID + ": not confirmed by the deadline",
					TsMs: now})
			case ok:
				d.Note = "not confirmed by the deadline; not suspended: the credential is " + cur.State
			default:
				d.Note = "not confirmed by the deadline; the credential is gone"
			}
			if err := a.opts.Audit.Append(ctx, audit.Entry{Actor: "system:recert", Action: "recert." + d.Decision, Target: it.CredentialID,
				Details: map[string]string{"campaign_id": camp.ID, "site_id": camp.SiteID, "subject_id": it.SubjectID, "note": d.Note},
				TsMs:    now}); err != nil {
				return closed, fmt.Errorf("audit recert deadline: %w", err)
			}
			ds = append(ds, d)
		}
		if len(cmds) > 0 {
			if err := a.opts.Credentials.Publish(ctx, cmds...); err != nil {
				return closed, fmt.Errorf("suspend unconfirmed credentials: %w", err)
			}
		}
		if err := store.PutDecisions(ctx, a.opts.Conn, camp.ID, ds...); err != nil {
			return closed, err
		}
		camp.ClosedMs, camp.Version = now, max(camp.Version+1, uint64(now))
		if err := a.opts.Audit.Append(ctx, audit.Entry{Actor: "system:recert", Action: "recert.close", Target: "recert/" + camp.ID,
			Details: map[string]string{"site_id": camp.SiteID, "undecided": strconv.Itoa(len(ds)), "suspended": strconv.Itoa(len(cmds))},
			TsMs:    now}); err != nil {
			return closed, fmt.Errorf("audit recert close: %w", err)
		}
		if err := store.PutCampaign(ctx, a.opts.Conn, camp); err != nil {
			return closed, err
		}
		closed = append(closed, camp.ID)
	}
	return closed, nil
}

// Run enforces deadlines every Every until ctx ends (once the control
// plane is ready).
func (a *API) Run(ctx context.Context) error {
	select {
	case <-a.opts.Credentials.Ready():
	case <-ctx.Done():
		return nil
	}
	t := time.NewTicker(a.opts.Every)
	defer t.Stop()
	for {
		if closed, err := a.Enforce(ctx); err != nil && ctx.Err() == nil {
			a.opts.Logger.Warn("recertification deadlines", "err", err)
		} else if len(closed) > 0 {
			a.opts.Logger.Info("recertification deadlines enforced", "campaigns", closed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
