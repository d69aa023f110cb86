package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/exception"
	exceptionapi "github.com/keyfleet/keyfleet/exception/api"
	"github.com/keyfleet/keyfleet/exception/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// ExceptionConfig configures the exception register.
type ExceptionConfig struct {
	// Warn is how long before its expiry an exception is "expiring" and
	// raises a reminder (expired_exception, low).
	Warn time.Duration
}

func (c *ExceptionConfig) registerFlags(s *flagenv.Set) {
	s.Duration(&c.Warn, "exception-warn", "KEYFLEET_EXCEPTION_WARN", stream.DefaultWarn,
		"how long before its expiry a recorded exception reads expiring and raises an expired_exception reminder (low)")
}

func (c *ExceptionConfig) validate() error {
	if c.Warn <= 0 {
		return fmt.Errorf("--exception-warn: %s must be positive", c.Warn)
	}
	return nil
}

// exceptionPart is the exception register wired into serve: the register
// on Kafka, its API, the expiry alerts and the register's answer to the
// estate's grant-time policy.
type exceptionPart struct {
	exceptions *stream.Exceptions
	api        *exceptionapi.API
	routes     []httpapi.Route
	ops        map[string]openapi.Operation
	loops      []loop
	closers    []io.Closer
}

// newExceptions builds the register stream; the API and the expiry alerts
// are added by connect once the control plane exists.
func newExceptions(bc bus.Config, conn driver.Conn, reg prometheus.Registerer, logger *slog.Logger) (*exceptionPart, error) {
	x, err := stream.New(stream.Options{Bus: bc, Conn: conn, Register: exception.NewRegister(),
		Logger: logger.With("part", "exceptions"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	return &exceptionPart{exceptions: x, loops: []loop{{"exception-register", x.Run}}, closers: []io.Closer{x}}, nil
}

// checker is the register as the estate's grant-time policy asks it.
func (p *exceptionPart) checker() grant.ExceptionChecker {
	return registerChecker{x: p.exceptions, now: time.Now}
}

// GrantKinds are the exceptions that lift a grant-time refusal: a lock's,
// a policy's for a scope, a person's credential (a door exception is about
// the door's state, not about who may be granted).
var GrantKinds = []exception.Kind{exception.KindLock, exception.KindPolicy, exception.KindCredential}

// registerChecker answers grant.ExceptionChecker from the register; it
// waits for the register to catch up with Kafka (a grant decided before
// would miss exceptions recorded earlier).
type registerChecker struct {
	x   *stream.Exceptions
	now func() time.Time
}

func (c registerChecker) Exception(ctx context.Context, q grant.ExceptionQuery) (grant.Exception, error) {
	select {
	case <-c.x.Ready():
	case <-ctx.Done():
		return grant.Exception{}, fmt.Errorf("exception register not ready: %w", ctx.Err())
	}
	r, ok := c.x.Register().Lifts(exception.Query{SubjectID: q.SubjectID, Role: q.Role, SiteID: q.Lock.SiteID,
		DoorID: q.Lock.DoorID, Vendor: q.Lock.Vendor, LockID: q.Lock.LockID, Capability: q.Capability,
		Kinds: GrantKinds}, c.now().UnixMilli())
	if !ok {
		return grant.Exception{Why: "no recorded exception covers it (POST " + exceptionapi.PathExceptions + ")"}, nil
	}
	return grant.Exception{ID: r.ID, Why: "exception " + r.ID + " (" + r.Reason + ")"}, nil
}

// credentialCounts counts the control plane's live credentials, by site.
func credentialCounts(creds interface {
	Each(fn func(r *control.Record))
}) exceptionapi.CredentialCounts {
	return func() exception.Credentials {
		out := exception.Credentials{BySite: map[string]int{}}
		creds.Each(func(r *control.Record) {
			if lifecycle.IsLive(r.State) {
				out.Total++
				out.BySite[r.SiteID]++
			}
		})
		return out
	}
}

// connect adds the API and, when the batch checks run on this instance,
// the expiry alerts.
func (p *exceptionPart) connect(cfg ExceptionConfig, det DetectConfig, bc bus.Config, conn driver.Conn, auditLog audit.Appender,
	creds interface {
		Each(fn func(r *control.Record))
	}, logger *slog.Logger) error {
	a, err := exceptionapi.New(exceptionapi.Options{Exceptions: p.exceptions, Conn: conn, Audit: auditLog,
		Credentials: credentialCounts(creds), Warn: cfg.Warn, Logger: logger.With("part", "exceptions")})
	if err != nil {
		return err
	}
	p.api, p.routes, p.ops = a, a.Routes(), a.Operations()
	if !det.Enabled || det.Batch == BatchNever {
		return nil
	}
	rules, err := detect.LoadRules(det.RulesFile)
	if err != nil {
		return err
	}
	w := bus.NewWriter(bc, bus.TopicAlerts)
	p.closers = append(p.closers, w)
	exp, err := stream.NewExpiry(stream.ExpiryOptions{Register: p.exceptions.Register(), Rules: rules.Detectors.ExpiredException,
		Warn: cfg.Warn, Alerts: w, Known: alertstore.New(conn), Logger: logger.With("part", "exceptions")})
	if err != nil {
		return err
	}
	p.loops = append(p.loops, loop{"exception-expiry", func(ctx context.Context) error {
		select {
		case <-p.exceptions.Ready():
		case <-ctx.Done():
			return nil
		}
		return exp.Run(ctx)
	}})
	return nil
}
