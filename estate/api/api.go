// Package api serves the lock estate over HTTP: the lock registry (admins
// create, update, retire, import and export locks; every change audited,
// published on lock.registry and kept in ClickHouse), the capability matrix,
// the weak-link report with the "upgrade critical doors first" plan, and
// vendor migrations (POST /v1/estate/migrations: the affected credentials
// move to the new locks through the control plane's commands, each lock
// confirms like in a revocation).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// Locks is where lock changes go and the registry is read from
// (estate/stream.Locks).
type Locks interface {
	Ready() <-chan struct{}
	Registry() *registry.Registry
	NextVersion(vendor, lockID string) uint64
	Publish(ctx context.Context, recs ...registry.Record) error
}

// Credentials is the control plane's state (control/stream.Processor): the
// credentials and the command queue a migration moves them through.
type Credentials interface {
	Ready() <-chan struct{}
	Each(fn func(r *control.Record))
	Publish(ctx context.Context, cmds ...control.Command) error
}

// Options configure the API.
type Options struct {
	Locks       Locks
	Credentials Credentials
	Conn        driver.Conn
	Audit       audit.Appender
	Policy      estate.Policy
	// TrafficDays is the default window of the door traffic the weak links
	// are ranked by (default 30; a request may ask for 1..90).
	TrafficDays int
	// PendingSLA is how long a lock may take to confirm a migration's
	// command before it counts as overdue (default 15 min).
	PendingSLA time.Duration
	// Timeout bounds each request's ClickHouse work (default 30 s).
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Locks == nil {
		errs = append(errs, errors.New("estate api: Locks is required"))
	}
	if o.Credentials == nil {
		errs = append(errs, errors.New("estate api: Credentials is required"))
	}
	if o.Conn == nil {
		errs = append(errs, errors.New("estate api: Conn is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("estate api: Audit is required (registry changes must be audited)"))
	}
	if err := o.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("estate api: %w", err))
	}
	if o.TrafficDays <= 0 {
		o.TrafficDays = 30
	}
	if o.TrafficDays > MaxTrafficDays {
		errs = append(errs, fmt.Errorf("estate api: traffic days %d above %d", o.TrafficDays, MaxTrafficDays))
	}
	if o.PendingSLA <= 0 {
		o.PendingSLA = control.DefaultPendingSLA
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
	return errors.Join(errs...)
}

// MaxTrafficDays bounds the traffic window of the weak-link report.
const MaxTrafficDays = 90

// API serves the estate routes.
type API struct {
	opts  Options
	cache *linkCache
}

// New returns the API.
func New(opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &API{opts: opts, cache: newLinkCache()}, nil
}

// Route paths.
const (
	PathLocks      = "/v1/locks"
	PathLock       = "/v1/locks/:vendor/*"
	PathRetire     = `/v1/locks\:retire`
	PathImport     = `/v1/locks\:import`
	PathExport     = `/v1/locks\:export`
	PathMatrix     = "/v1/estate/capabilities"
	PathWeakLinks  = "/v1/estate/weak-links"
	PathPlan       = "/v1/estate/plan"
	PathMigrations = "/v1/estate/migrations"
	PathMigration  = "/v1/estate/migrations/:id"
)

// Routes returns the estate routes: registry writes and migrations for
// admins, reads for every analyst role.
func (a *API) Routes() []httpapi.Route {
	read := httpapi.ReadRoles
	admin := httpapi.AdminOnly
	r := func(method, path, summary string, roles []httpapi.Role, h fiber.Handler) httpapi.Route {
		// The reads honour site-scoped tokens (admin writes cannot be scoped).
		return httpapi.Route{Method: method, Path: path, Summary: summary, Roles: roles, Handler: a.whenReady(h),
			SiteScoped: method == fiber.MethodGet && path != PathMigrations && path != PathMigration}
	}
	return []httpapi.Route{
		r(fiber.MethodGet, PathLocks, "Registered locks (filters: vendor, site, group, tier, retired; limit).", read, a.handleList),
		r(fiber.MethodPost, PathLocks, "Register a lock: vendor, lock id, site/zone/door, door groups, model, firmware, risk tier (audited).", admin, a.handleCreate),
		r(fiber.MethodPost, PathRetire, "Retire locks (audited): out of service for new grants; their late events still resolve.", admin, a.handleRetire),
		r(fiber.MethodPost, PathImport, "Bulk import locks: CSV (text/csv) or a JSON array; all rows are checked first, then created, updated or retired (audited).", admin, a.handleImport),
		r(fiber.MethodGet, PathExport, "Export the lock registry (format: csv or json; retired=true includes retired locks).", read, a.handleExport),
		r(fiber.MethodGet, PathLock, "One lock: its record, its capabilities and gaps against its tier, and its history.", read, a.handleGet),
		r(fiber.MethodPut, PathLock, "Change a lock (audited): site/zone/door, door groups, model, firmware, risk tier.", admin, a.handleUpdate),
		r(fiber.MethodGet, PathMatrix, "The capability matrix (vendor × model × firmware rule, with sources) and the risk tiers in force.", read, a.handleMatrix),
		r(fiber.MethodGet, PathWeakLinks, "Weak links: doors whose tier demands more than their lock can do, ranked by risk × traffic, with the missing capabilities and the upgrade that fixes each (days, site, limit).", read, a.handleWeakLinks),
		r(fiber.MethodGet, PathPlan, "The upgrade plan: critical doors first (tier, then risk), with the upgrade of each and its cost (days, site, limit).", read, a.handlePlan),
		r(fiber.MethodPost, PathMigrations, "Start a vendor migration (dry_run=true: the plan only): the old locks' credentials are granted on the new locks and dropped from the old ones (audited).", admin, a.handleMigrate),
		r(fiber.MethodGet, PathMigrations, "Vendor migrations, newest first (limit).", admin, a.handleMigrations),
		r(fiber.MethodGet, PathMigration, "A vendor migration: per lock pair the credentials moved and confirmed, the stragglers with their age.", admin, a.handleMigration),
	}
}

// whenReady answers 503 until the registry has caught up with Kafka.
func (a *API) whenReady(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		select {
		case <-a.opts.Locks.Ready():
			return h(c)
		default:
			c.Set(fiber.HeaderRetryAfter, "2")
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "starting", "the lock registry is catching up with Kafka")
		}
	}
}

func (a *API) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.opts.Timeout)
}

// audit appends an entry; an error means the change must not happen.
func (a *API) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	if err := a.opts.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: target, Details: details,
		TsMs: a.opts.Now().UnixMilli()}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable",
			"audit log unavailable, change not carried out: "+err.Error())
	}
	return nil
}

func unavailable(err error) error {
	var pr *httpapi.Problem
	if errors.As(err, &pr) {
		return pr
	}
	return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
}

// lockParams returns the vendor and lock id of a lock path (the lock id
// may hold slashes: legacy panels' "PANEL-1/READER-2"), decoded and copied.
func lockParams(c *fiber.Ctx) (string, string, error) {
	vendor, err := url.PathUnescape(c.Params("vendor"))
	if err != nil || vendor == "" {
		return "", "", httpapi.BadRequest("vendor", "invalid path parameter")
	}
	id, err := url.PathUnescape(c.Params("*"))
	if err != nil || id == "" {
		return "", "", httpapi.BadRequest("lock_id", "invalid path parameter")
	}
	return strings.Clone(vendor), strings.Clone(id), nil
}
