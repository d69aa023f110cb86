// Package jml is identity sync's joiner/mover/leaver automation: it turns
// identity changes (identity.Change, from the SCIM service provider or the
// HR feed, carried on identity.changes keyed by subject) into credential
// requests and revocations through the control plane's normal API path
// (Control), so every action is validated, idempotent, back-pressured and
// audited like a human's.
//
//   - joined, moved, updated: the person's groups map (Mapping) to the
//     credentials they should hold — one per role template, site and extra
//     door groups. A missing one is requested (under the template's
//     approval rule: an auto role is issued at once, the others wait for an
//     approver); a live credential of a managed role that no group asks for
//     any more is revoked (each lock holding it is told), so a mover's door
//     set follows the new template (revocations happen when a change
//     takes something away — a group left or renamed, a site changed — or
//     on a resync, never while a new person's groups are still arriving).
//     Credentials of roles no rule maps to
//     (break-glass always; with a mapping file, every role it leaves out,
//     such as a guest pass issued by hand) are left alone.
//   - left (deactivated, deleted, end date passed): every live credential
//     is revoked through the layered revocation (RevokeSubject). The leaver
//     and its revocation are recorded (Options.Leavers) for the KPI, and the
//     latency from the identity change to the last lock confirmation is
//     observed as keyfleet_identity_leaver_latency_seconds.
//
// Changes are handled idempotently: a re-delivered change or a resync
// requests nothing that exists and revokes nothing twice.
package jml

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// Options configure an Automation.
type Options struct {
	Control Control
	Mapping *Mapping
	// Leavers records a leaver and its revocation (identity/store); nil
	// records nothing (the latency metric is still observed).
	Leavers func(ctx context.Context, l identity.Leaver) error
	// Bus is where Run consumes identity.changes.
	Bus bus.Config
	// Settle bounds how long a leaver waits for credentials requested for
	// it moments before to reach the control plane's view, so they are
	// revoked too (default 10 s).
	Settle time.Duration
	// TrackEvery is how often leavers' revocations are checked for their
	// last lock confirmation (default 1 s).
	TrackEvery time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.Control == nil {
		errs = append(errs, errors.New("jml: Control is required"))
	}
	if o.Mapping == nil {
		errs = append(errs, errors.New("jml: Mapping is required"))
	} else if err := o.Mapping.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Settle < 0 || o.TrackEvery < 0 {
		errs = append(errs, errors.New("jml: Settle and TrackEvery must not be negative"))
	}
	return errors.Join(errs...)
}

// Automation applies identity changes to credentials.
type Automation struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	pending  map[string][]inflight // subject → credentials requested, not yet in the view
	revoking map[string]time.Time  // credential id → revoked at
	tracked  []trackedLeaver

	changes   *prometheus.CounterVec
	requested *prometheus.CounterVec
	revoked   *prometheus.CounterVec
	latency   prometheus.Histogram
	waiting   prometheus.GaugeFunc
}

type inflight struct {
	credentialID string
	want         Want
	at           time.Time
}

type trackedLeaver struct {
	revocationID string
	changeMs     int64
	next         time.Time
}

// New returns an automation.
func New(opts Options) (*Automation, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Settle == 0 {
		opts.Settle = 10 * time.Second
	}
	if opts.TrackEvery == 0 {
		opts.TrackEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Automation{opts: opts, log: opts.Logger, pending: map[string][]inflight{}, revoking: map[string]time.Time{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_identity_changes_processed_total",
			Help: "Identity changes handled by the joiner/mover/leaver automation, by kind and result (applied, failed).",
		}, []string{"kind", "result"}),
		requested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_identity_credentials_requested_total",
			Help: "Credentials requested for joiners and movers, by role and result (accepted, refused).",
		}, []string{"role", "result"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_identity_revocations_total",
			Help: "Revocations identity sync requested: mover (one credential a group no longer grants) or leaver (every credential of a subject).",
		}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_identity_leaver_latency_seconds",
			Help:    "Leaver latency: from the identity change (deactivation, deletion, end date) to the last lock confirming the revocation of the leaver's credentials.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}),
	}
	a.waiting = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyfleet_identity_leavers_unconfirmed",
		Help: "Leavers whose revocation this instance is waiting to see confirmed by every lock.",
	}, func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.tracked))
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{a.changes, a.requested, a.revoked, a.latency, a.waiting} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register jml metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Run consumes identity.changes in the keyfleet-identity-sync group and
// handles each change, and follows leavers' revocations, until ctx ends.
func (a *Automation) Run(ctx context.Context) error {
	go a.track(ctx)
	r := bus.NewGroupReader(a.opts.Bus, bus.TopicIdentityChanges, bus.GroupIdentitySync)
	defer r.Close()
	dlq := bus.NewWriter(a.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	err := bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 500, MaxWait: 20 * time.Millisecond, Idle: 2 * time.Millisecond,
		Logger: a.log, Name: bus.TopicIdentityChanges, DeadLetter: dlq}, func(ctx context.Context, msgs []kafka.Message) error {
		var bad []kafka.Message
		var why error
		for _, m := range msgs {
			var c identity.Change
			err := json.Unmarshal(m.Value, &c)
			if err == nil && c.SubjectID == "" {
				err = errors.New("no subject_id")
			}
			if err != nil {
				a.changes.WithLabelValues("unknown", "failed").Inc()
				bad, why = append(bad, m), err
				continue
			}
			if err := a.Handle(ctx, c); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			return bus.Permanent("undecodable_identity_change", why, bad...) // dead-lettered, the batch committed
		}
		return nil
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Handle applies one change. Refusals of the control plane (a subject the
// issuance check refuses, an unknown door group) are logged and counted,
// not returned: the change is done. It returns an error only when ctx ends
// while the control plane is unavailable.
func (a *Automation) Handle(ctx context.Context, c identity.Change) error {
	var err error
	if c.Kind == identity.Left {
		err = a.leave(ctx, c)
	} else {
		err = a.reconcile(ctx, c)
	}
	result := "applied"
	if err != nil {
		result = "failed"
	}
	a.changes.WithLabelValues(string(c.Kind), result).Inc()
	if err != nil && ctx.Err() == nil && bus.IsPermanent(err) {
		a.log.Warn("identity change not applied", "kind", c.Kind, "subject", c.SubjectID, "err", err)
		return nil
	}
	return err
}

// call runs fn until it succeeds, retrying transient failures (throttling,
// the control plane or a dependency unavailable) with backoff; a refusal is
// returned at once as a permanent error.
func (a *Automation) call(ctx context.Context, what string, fn func(context.Context) error) error {
	return bus.Retry(ctx, a.log, what, func(ctx context.Context) error {
		err := fn(ctx)
		var ae *APIError
		if errors.As(err, &ae) && !ae.Transient() {
			return bus.Permanent(ae.Code, err)
		}
		return err
	})
}

func (a *Automation) credentials(ctx context.Context, subject string) ([]*control.Record, error) {
	var recs []*control.Record
	err := a.call(ctx, "read credentials", func(ctx context.Context) error {
		var err error
		recs, err = a.opts.Control.Credentials(ctx, subject)
		return err
	})
	return recs, err
}

// reconcile makes a joiner's, mover's or updated person's credentials
// match what their groups grant.
func (a *Automation) reconcile(ctx context.Context, c identity.Change) error {
	creds, err := a.credentials(ctx, c.SubjectID)
	if err != nil {
		return err
	}
	now := a.opts.Now()
	live := a.settleView(c.SubjectID, creds, now)
	wants := a.opts.Mapping.Wants(c.Groups, c.Site)
	pending := a.pendingOf(c.SubjectID)
	var errs []error
	for _, w := range wants {
		held := false
		for _, r := range live {
			held = held || (w.satisfies(r) && !a.isRevoking(r.CredentialID))
		}
		for _, p := range pending {
			held = held || p.want.key() == w.key()
		}
		if held {
			continue
		}
		req := control.CredentialRequest{SubjectID: c.SubjectID, Role: w.Role, SiteID: w.Site, DoorGroups: w.DoorGroups,
			Reason: fmt.Sprintf("identity sync: %s (%s); groups map to role %s", c.Kind, c.Reason, w.Role)}
		var resp *control.ProvisionResponse
		err := a.call(ctx, "request credential", func(ctx context.Context) error {
			var err error
			resp, err = a.opts.Control.Request(ctx, idempotencyKey(c, w), req)
			return err
		})
		if err != nil {
			a.requested.WithLabelValues(w.Role, "refused").Inc()
			errs = append(errs, fmt.Errorf("request %s credential: %w", w.Role, err))
			continue
		}
		if resp.Accepted == 0 || len(resp.CredentialIDs) == 0 || resp.CredentialIDs[0] == "" {
			a.requested.WithLabelValues(w.Role, "refused").Inc()
			why := "refused"
			if len(resp.Failures) > 0 {
				why = resp.Failures[0].Reason
			}
			errs = append(errs, bus.Permanent("request_refused", fmt.Errorf("request %s credential: %s", w.Role, why)))
			continue
		}
		a.requested.WithLabelValues(w.Role, "accepted").Inc()
		a.mu.Lock()
		a.pending[c.SubjectID] = append(a.pending[c.SubjectID], inflight{credentialID: resp.CredentialIDs[0], want: w, at: now})
		a.mu.Unlock()
	}
	// Credentials are taken away only when the change took something
	// away (a group left or renamed, a site changed) or on a resync: a
	// person created before their groups arrive (identity providers push
	// the user, then each membership), or given one more group, keeps
	// what they hold, including credentials issued before identity sync.
	prune := c.Kind == identity.Updated || len(c.Removed) > 0 || c.Reason == "renamed" || c.Reason == "resync"
	for _, r := range live {
		if !prune || !a.opts.Mapping.Managed(r.Role) || a.isRevoking(r.CredentialID) {
			continue
		}
		wanted := false
		for _, w := range wants {
			wanted = wanted || w.satisfies(r)
		}
		if wanted {
			continue
		}
		reason := fmt.Sprintf("identity sync: %s (%s); no group grants role %s at site %s any more", c.Kind, c.Reason, r.Role, r.SiteID)
		err := a.call(ctx, "revoke credential", func(ctx context.Context) error {
			_, err := a.opts.Control.Revoke(ctx, r.CredentialID, reason)
			return err
		})
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 409 {
			err = nil // revoked meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("revoke credential %s: %w", r.CredentialID, err))
			continue
		}
		a.revoked.WithLabelValues("mover").Inc()
		a.mu.Lock()
		a.revoking[r.CredentialID] = now
		a.mu.Unlock()
	}
	return joinPermanent(errs)
}

// leave revokes every live credential of a leaver.
func (a *Automation) leave(ctx context.Context, c identity.Change) error {
	if err := a.settle(ctx, c.SubjectID); err != nil {
		return err
	}
	var resp *control.SubjectRevokeResponse
	err := a.call(ctx, "revoke subject", func(ctx context.Context) error {
		var err error
		resp, err = a.opts.Control.RevokeSubject(ctx, c.SubjectID, "identity sync: left ("+c.Reason+")")
		return err
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.pending, c.SubjectID)
	a.mu.Unlock()
	if resp == nil {
		return nil // nothing live
	}
	a.revoked.WithLabelValues("leaver").Inc()
	changeMs := c.At.UnixMilli()
	if c.Reason == "end_date" && !c.EndDate.IsZero() {
		changeMs = c.EndDate.UnixMilli() // the moment access should have ended
	}
	now := a.opts.Now()
	a.mu.Lock()
	for _, id := range resp.CredentialIDs {
		a.revoking[id] = now
	}
	if c.Reason != "resync" {
		a.tracked = append(a.tracked, trackedLeaver{revocationID: resp.RevocationID, changeMs: changeMs, next: now})
	}
	a.mu.Unlock()
	if a.opts.Leavers == nil {
		return nil
	}
	l := identity.Leaver{SubjectID: c.SubjectID, ChangeMs: changeMs, Reason: c.Reason, RevocationID: resp.RevocationID,
		Credentials: len(resp.CredentialIDs), RequestedMs: now.UnixMilli()}
	return bus.Retry(ctx, a.log, "record leaver", func(ctx context.Context) error { return a.opts.Leavers(ctx, l) })
}

// settle waits (up to Settle) until the credentials requested for a
// subject are in the control plane's view.
func (a *Automation) settle(ctx context.Context, subject string) error {
	deadline := a.opts.Now().Add(a.opts.Settle)
	for len(a.pendingOf(subject)) > 0 {
		creds, err := a.credentials(ctx, subject)
		if err != nil {
			return err
		}
		a.settleView(subject, creds, a.opts.Now())
		if len(a.pendingOf(subject)) == 0 || a.opts.Now().After(deadline) {
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// settleView forgets requests that reached the view (or are ten minutes
// old) and revocations the view shows done, and returns the live
// credentials.
func (a *Automation) settleView(subject string, creds []*control.Record, now time.Time) []*control.Record {
	var live []*control.Record
	seen := map[string]bool{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range creds {
		seen[r.CredentialID] = true
		if lifecycle.IsLive(r.State) {
			live = append(live, r)
		} else {
			delete(a.revoking, r.CredentialID)
		}
	}
	var keep []inflight
	for _, p := range a.pending[subject] {
		if !seen[p.credentialID] && now.Sub(p.at) < 10*time.Minute {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		delete(a.pending, subject)
	} else {
		a.pending[subject] = keep
	}
	for id, at := range a.revoking {
		if now.Sub(at) > 10*time.Minute {
			delete(a.revoking, id)
		}
	}
	return live
}

func (a *Automation) pendingOf(subject string) []inflight {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]inflight(nil), a.pending[subject]...)
}

func (a *Automation) isRevoking(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.revoking[id]
	return ok
}

// track follows leavers' revocations until every lock confirmed, then
// observes the leaver latency.
func (a *Automation) track(ctx context.Context) {
	t := time.NewTicker(a.opts.TrackEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.TrackOnce(ctx)
	}
}

// TrackOnce checks the leavers' revocations that are due once.
func (a *Automation) TrackOnce(ctx context.Context) {
	now := a.opts.Now()
	a.mu.Lock()
	due := make([]trackedLeaver, 0, len(a.tracked))
	for _, l := range a.tracked {
		if !l.next.After(now) && len(due) < 100 {
			due = append(due, l)
		}
	}
	a.mu.Unlock()
	done := map[string]bool{}
	next := map[string]time.Time{}
	for _, l := range due {
		rv, err := a.opts.Control.Revocation(ctx, l.revocationID)
		if err != nil {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Transient() || ae.Status == 404 { // 404: its rows are not stored yet
				next[l.revocationID] = now.Add(a.opts.TrackEvery)
				continue
			}
			done[l.revocationID] = true
			continue
		}
		if rv.Status == "confirmed" {
			last := rv.RequestedMs + max(rv.TimeToConfirmMs, rv.TimeToDisableMs)
			a.latency.Observe(float64(max(last-l.changeMs, 0)) / 1000)
			done[l.revocationID] = true
			continue
		}
		// Check again soon while it is young, less often once locks lag.
		age := now.Sub(time.UnixMilli(l.changeMs))
		next[l.revocationID] = now.Add(min(max(age/8, a.opts.TrackEvery), time.Minute))
		if age > 7*24*time.Hour {
			done[l.revocationID] = true
		}
	}
	a.mu.Lock()
	keep := a.tracked[:0]
	for _, l := range a.tracked {
		if done[l.revocationID] {
			continue
		}
		if n, ok := next[l.revocationID]; ok {
			l.next = n
		}
		keep = append(keep, l)
	}
	a.tracked = keep
	a.mu.Unlock()
}

// idempotencyKey names the request a change makes for a want: the same
// change delivered twice asks once; a later change asks anew.
func idempotencyKey(c identity.Change, w Want) string {
	h := sha256.Sum256([]byte(strings.Join([]string{c.SubjectID, w.key(), c.At.UTC().Format(time.RFC3339Nano), string(c.Kind), c.Reason}, "\x00")))
	return "identity-" + hex.EncodeToString(h[:16])
}

// joinPermanent joins errors; the result is permanent (logged and
// skipped) unless one of them is not.
func joinPermanent(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	for _, e := range errs {
		if !bus.IsPermanent(e) {
			return err
		}
	}
	return bus.Permanent("refused", err)
}
