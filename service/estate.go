package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/estate"
	estateapi "github.com/keyfleet/keyfleet/estate/api"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/estate/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// EstateConfig configures the lock estate: the policy (capability matrix
// and risk tiers) and the weak-link report's traffic window.
type EstateConfig struct {
	ConfigFile  string
	TrafficDays int
}

func (c *EstateConfig) registerFlags(s *flagenv.Set) {
	s.String(&c.ConfigFile, "estate-config", "KEYFLEET_ESTATE_CONFIG", "",
		"estate policy file (JSON {\"profiles\": [...], \"tiers\": [...]}): capability-matrix rows and risk tiers that replace or add to the shipped ones (docs/capabilities.md)")
	s.Int(&c.TrafficDays, "estate-traffic-days", "KEYFLEET_ESTATE_TRAFFIC_DAYS", 30,
		"days of door traffic the weak-link report ranks by unless a request asks otherwise (1..90)")
}

func (c *EstateConfig) validate() error {
	var errs []error
	if c.TrafficDays < 1 || c.TrafficDays > estateapi.MaxTrafficDays {
		errs = append(errs, fmt.Errorf("--estate-traffic-days: %d is not in 1..%d", c.TrafficDays, estateapi.MaxTrafficDays))
	}
	if _, err := c.policy(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// policy is the shipped policy, or the configuration file's merged over it.
func (c *EstateConfig) policy() (estate.Policy, error) {
	if c.ConfigFile == "" {
		return estate.DefaultPolicy(), nil
	}
	p, err := estate.LoadConfig(c.ConfigFile)
	if err != nil {
		return estate.Policy{}, fmt.Errorf("--estate-config: %w", err)
	}
	return p, nil
}

// estatePart is the lock estate wired into serve: the lock registry on
// Kafka, its API (locks, weak links, migrations) and the grant-time policy
// the control plane asks.
type estatePart struct {
	locks   *stream.Locks
	api     *estateapi.API
	checker *grant.Checker
	routes  []httpapi.Route
}

// newEstate builds the registry stream and the grant-time policy; the API
// is added by withAPI once the control plane exists.
func newEstate(cfg EstateConfig, bc bus.Config, conn driver.Conn, locks *registry.Registry, exceptions grant.ExceptionChecker,
	reg prometheus.Registerer, logger *slog.Logger) (*estatePart, estate.Policy, error) {
	policy, err := cfg.policy()
	if err != nil {
		return nil, policy, err
	}
	ls, err := stream.New(stream.Options{Bus: bc, Conn: conn, Registry: locks, Logger: logger.With("part", "estate"), Registerer: reg})
	if err != nil {
		return nil, policy, err
	}
	return &estatePart{locks: ls, checker: grant.New(policy, locks, exceptions)}, policy, nil
}

func (e *estatePart) withAPI(cfg EstateConfig, policy estate.Policy, creds estateapi.Credentials, conn driver.Conn,
	auditLog audit.Appender, sla time.Duration, logger *slog.Logger) error {
	a, err := estateapi.New(estateapi.Options{Locks: e.locks, Credentials: creds, Conn: conn, Audit: auditLog, Policy: policy,
		TrafficDays: cfg.TrafficDays, PendingSLA: sla, Logger: logger.With("part", "estate")})
	if err != nil {
		return err
	}
	e.api, e.routes = a, a.Routes()
	return nil
}

// afterRegistry runs fn once the lock registry has caught up with Kafka
// (the normalizer and the control plane must not resolve locks before).
func (e *estatePart) afterRegistry(fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-e.locks.Ready():
		case <-ctx.Done():
			return nil
		}
		return fn(ctx)
	}
}
