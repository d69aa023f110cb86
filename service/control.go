package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// ControlConfig configures the credential control plane of `keyfleet serve`.
type ControlConfig struct {
	MaxQueue   int
	MaxBulk    int
	PendingSLA time.Duration
	AuditChain string
}

func (c *ControlConfig) registerFlags(s *flagenv.Set) {
	s.Int(&c.MaxQueue, "control-max-queue", "KEYFLEET_CONTROL_MAX_QUEUE", 50000,
		"control commands that may wait in control.commands before provisioning requests get 429")
	s.Int(&c.MaxBulk, "control-max-bulk", "KEYFLEET_CONTROL_MAX_BULK", 10000, "most credentials in one bulk request")
	s.Duration(&c.PendingSLA, "revocation-sla", "KEYFLEET_REVOCATION_SLA", control.DefaultPendingSLA,
		"how long a lock may take to confirm a revocation before it counts as overdue")
	s.String(&c.AuditChain, "audit-chain", "KEYFLEET_AUDIT_CHAIN", "",
		"name of this process's audit hash chain (default: host-pid-start; never share one between processes)")
}

// controlPlane is the credential control plane: its API (routes, and the
// Suspend automated responders call) and its Kafka processor (Run).
type controlPlane struct {
	*api.API
	stream *stream.Processor
}

func (c controlPlane) Run(ctx context.Context) error { return c.stream.Run(ctx) }

// refusals is the control plane as the responders' Suspender: what the
// control plane refuses for good (an unknown credential, a transition the
// lifecycle does not allow) is a permanent error the responder records as
// failed; anything else (the audit log or Kafka away) is transient and the
// responder tries again.
type refusals struct{ respond.Suspender }

func (r refusals) Suspend(ctx context.Context, credentialID, reason, actor string) error {
	err := r.Suspender.Suspend(ctx, credentialID, reason, actor)
	var illegal *lifecycle.TransitionError
	switch {
	case errors.Is(err, control.ErrNotFound):
		return bus.Permanent("unknown_credential", err)
	case errors.As(err, &illegal):
		return bus.Permanent("invalid_transition", err)
	}
	return err
}

// newControl builds the credential control plane on the audit log. The
// plane feeds locks (the normalizer's registry) from credential.events.
func newControl(cfg ControlConfig, bc bus.Config, conn driver.Conn, auditLog *audit.Store, locks *registry.Registry, key []byte,
	reg prometheus.Registerer, logger *slog.Logger, policy *grant.Checker,
	verifySubjects func(context.Context, []string, []string) ([]string, error)) (controlPlane, error) {
	logger = logger.With("part", "control")
	proc, err := stream.New(stream.Options{Bus: bc, Conn: conn, Registry: locks, Audit: auditLog, Logger: logger,
		Registerer: reg, MaxQueue: cfg.MaxQueue, PendingSLA: cfg.PendingSLA, Enforcement: policy})
	if err != nil {
		return controlPlane{}, err
	}
	ctlAPI, err := api.New(api.Options{State: proc, Conn: conn, Audit: auditLog, Verifier: auditLog, PseudonymKey: key,
		Logger: logger, Registerer: reg, MaxBulk: cfg.MaxBulk, PendingSLA: cfg.PendingSLA, Policy: policy,
		VerifySubjects: verifySubjects})
	if err != nil {
		return controlPlane{}, err
	}
	return controlPlane{API: ctlAPI, stream: proc}, nil
}
