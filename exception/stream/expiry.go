package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	detectstream "github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// AlertIndex says which alerts are stored already (alertstore.Store).
type AlertIndex interface {
	Known(ctx context.Context, ids []string) (map[string]bool, error)
}

// ExpiryOptions configure Expiry.
type ExpiryOptions struct {
	Register *exception.Register
	// Rules are expired_exception's (severity, grace, suppression; a
	// disabled detector raises nothing).
	Rules detect.ExpiredRules
	// Warn is how long before its expiry an exception raises an expiring
	// alert (default 7 days; the API's "expiring" state too).
	Warn time.Duration
	// Every is how often the register is checked (default Rules.Every, else 1 h).
	Every time.Duration
	// Alerts writes the alerts topic.
	Alerts bus.Writer
	// Known, when set, keeps alerts stored already from being produced again.
	Known  AlertIndex
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultWarn is ExpiryOptions.Warn's default.
const DefaultWarn = 7 * 24 * time.Hour

// Validate fills defaults and checks the options.
func (o *ExpiryOptions) Validate() error {
	if o.Register == nil || o.Alerts == nil {
		return errors.New("exception expiry: Register and Alerts are required")
	}
	if o.Warn <= 0 {
		o.Warn = DefaultWarn
	}
	if o.Every <= 0 {
		o.Every = o.Rules.Every.D()
	}
	if o.Every <= 0 {
		o.Every = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Expiry raises expired_exception for the register's open exceptions that
// are about to expire or past their expiry. Every instance runs it on its
// own register: the alert ids are deterministic, so instances raise the
// same alerts, and the alert index keeps one that is stored from being
// produced again.
type Expiry struct {
	opts     ExpiryOptions
	produced map[string]bool
}

// NewExpiry returns the check.
func NewExpiry(opts ExpiryOptions) (*Expiry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Expiry{opts: opts, produced: map[string]bool{}}, nil
}

// Run checks at once, then every Every and whenever the register changed
// (looked at every few seconds), until ctx ends.
func (e *Expiry) Run(ctx context.Context) error {
	poll := min(e.opts.Every, 5*time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	var checked uint64
	var last time.Time
	for {
		if v := e.opts.Register.Version(); v != checked || time.Since(last) >= e.opts.Every {
			if _, err := e.Check(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				e.opts.Logger.Warn("exception expiry check", "err", err)
			} else {
				checked, last = v, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Alerts returns the alerts the register's open exceptions raise at now.
func Alerts(recs []exception.Record, rules *detect.ExpiredRules, now int64, warn time.Duration) []detect.Alert {
	var out []detect.Alert
	for _, r := range recs {
		if r.Status != exception.StatusOpen {
			continue
		}
		if a, ok := detect.CheckRegisteredException(rules, Registered(r), now, warn); ok {
			out = append(out, a)
		}
	}
	return out
}

// Registered is a record as expired_exception judges it.
func Registered(r exception.Record) detect.RegisteredException {
	return detect.RegisteredException{ID: r.ID, Kind: string(r.Kind), Reason: r.Reason, Scope: ScopeText(r.Scope),
		SiteID: r.Scope.SiteID, DoorID: r.Scope.DoorID, SubjectID: r.Scope.SubjectID, CredentialID: r.Scope.CredentialID,
		ExpiryMs: r.ExpiryMs}
}

// ScopeText is a scope in words: "site s1, lock legacy/P1, capability schedule".
func ScopeText(s exception.Scope) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("site", s.SiteID)
	add("door", s.DoorID)
	if s.Vendor != "" || s.LockID != "" {
		add("lock", s.Vendor+"/"+s.LockID)
	}
	add("subject", s.SubjectID)
	add("credential", s.CredentialID)
	add("role", s.Role)
	add("capability", s.Capability)
	if len(parts) == 0 {
		return "no scope"
	}
	return strings.Join(parts, ", ")
}

// Check produces the alerts due at the current time that are neither
// stored nor produced by this instance before; it returns them.
func (e *Expiry) Check(ctx context.Context) ([]detect.Alert, error) {
	now := e.opts.Now()
	alerts := Alerts(e.opts.Register.All(), &e.opts.Rules, now.UnixMilli(), e.opts.Warn)
	var ids []string
	due := map[string]bool{}
	for _, a := range alerts {
		due[a.AlertID] = true
		if !e.produced[a.AlertID] {
			ids = append(ids, a.AlertID)
		}
	}
	for id := range e.produced { // forget alerts no longer due
		if !due[id] {
			delete(e.produced, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	if e.opts.Known != nil {
		var err error
		if known, err = e.opts.Known.Known(ctx, ids); err != nil {
			return nil, fmt.Errorf("known alerts: %w", err)
		}
	}
	var out []detect.Alert
	var msgs []kafka.Message
	for _, a := range alerts {
		if e.produced[a.AlertID] || known[a.AlertID] {
			continue
		}
		a.DetectedMs = now.UnixMilli()
		b, err := json.Marshal(&a)
		if err != nil {
			return nil, fmt.Errorf("encode alert: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(detectstream.AlertKey(&a)), Value: b, Time: now})
		out = append(out, a)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	if err := e.opts.Alerts.WriteMessages(ctx, msgs...); err != nil {
		return nil, fmt.Errorf("produce exception alerts: %w", err)
	}
	for _, a := range out {
		e.produced[a.AlertID] = true
	}
	return out, nil
}
