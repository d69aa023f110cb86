// Package respond runs the automated responders: rules (in the detection
// rules file) that map an alert's detector and severity to actions —
// suspend the credential through the control plane, notify a webhook
// (HMAC-signed), open a ticket-like record. Every action is recorded in
// alert_actions with how a human reverses it and audited with the alert that
// caused it. Dry-run records and audits what would have been done, and
// automatic suspensions are rate-limited per site.
//
// Responders read the alerts topic in their own consumer group and act on
// an alert when it is raised (revision 0), once: before acting they check
// alert_actions, so a re-delivered alert does not suspend twice.
package respond

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Suspender suspends a credential through the control plane (implemented by
// the credential control plane; a suspension is a lifecycle change
// active → suspended, published on credential.events and pushed to locks).
// A refusal that retrying cannot change (an unknown credential, one that is
// not active) is a *bus.PermanentError: the action is recorded as failed.
// Any other error is taken as the control plane's dependencies being away:
// the responder waits and tries again, holding its place on the alerts topic.
type Suspender interface {
	Suspend(ctx context.Context, credentialID, reason, actor string) error
}

// Action outcomes (alert_actions.outcome, metric label).
const (
	OutcomeDone        = "done"
	OutcomeDryRun      = "dry_run"
	OutcomeRateLimited = "rate_limited"
	OutcomeSkipped     = "skipped" // nothing to act on (no credential, no webhook configured)
	OutcomeFailed      = "failed"
)

// Webhook signature headers. The receiver recomputes
// hex(HMAC-SHA256(secret, timestamp + "." + body)) and compares it with the
// signature (after "v1="), and rejects timestamps older than a few minutes.
const (
	HeaderTimestamp = "X-Keyfleet-Timestamp" // Unix seconds
	HeaderSignature = "X-Keyfleet-Signature" // "v1=" + hex HMAC-SHA256
)

// Sign returns the signature header value for a webhook body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook signature (for receivers and tests).
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// Options configure a Responder.
type Options struct {
	Rules     *detect.Rules
	Reader    bus.MessageReader // alerts topic, bus.GroupRespond consumer group
	Conn      driver.Conn       // alert_actions, alert_tickets
	Suspender Suspender         // nil: suspensions are skipped (no control plane connected)
	Auditor   audit.Appender

	WebhookURL    string
	WebhookSecret []byte
	HTTPClient    *http.Client

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Responder acts on alerts.
type Responder struct {
	opts    Options
	actions *prometheus.CounterVec

	mu       sync.Mutex
	done     map[string]bool        // action ids already recorded
	rate     map[string][]time.Time // site → recent automatic suspensions
	seenSite map[string]bool        // sites whose recorded suspensions were read
}

// New returns a responder.
func New(o Options) (*Responder, error) {
	if o.Rules == nil || o.Conn == nil || o.Auditor == nil {
		return nil, errors.New("respond: Rules, Conn and Auditor are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.WebhookURL != "" && len(o.WebhookSecret) < 16 {
		return nil, errors.New("respond: a webhook needs a secret of at least 16 bytes")
	}
	r := &Responder{opts: o, done: map[string]bool{}, rate: map[string][]time.Time{}, seenSite: map[string]bool{},
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_respond_actions_total",
			Help: "Responder actions, by action (suspend, webhook, ticket) and outcome (done, dry_run, rate_limited, skipped, failed).",
		}, []string{"action", "outcome"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.actions)
	}
	return r, nil
}

// Run consumes the alerts topic until ctx ends.
func (r *Responder) Run(ctx context.Context) error {
	if r.opts.Reader == nil {
		return errors.New("respond: Reader is required to run")
	}
	err := bus.ConsumeBatches(ctx, r.opts.Reader, bus.BatchOptions{
		MaxBatch: 500, MaxWait: 50 * time.Millisecond, Logger: r.opts.Logger, Name: "respond",
	}, func(ctx context.Context, batch []kafka.Message) error {
		alerts := make([]*detect.Alert, 0, len(batch))
		for _, m := range batch {
			var a detect.Alert
			if err := json.Unmarshal(m.Value, &a); err != nil || a.AlertID == "" {
				continue // not an alert; the alert sink counts these
			}
			alerts = append(alerts, &a)
		}
		return r.HandleBatch(ctx, alerts)
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Plan returns the actions the rules give an alert, each with the first rule
// that asked for it, in order.
func Plan(rules *detect.Rules, a *detect.Alert) []Step {
	var out []Step
	for _, rule := range rules.Responders.Rules {
		if !rule.Matches(a) {
			continue
		}
		for _, act := range rule.Actions {
			if !slices.ContainsFunc(out, func(s Step) bool { return s.Action == act }) {
				out = append(out, Step{Rule: rule.Name, Action: act})
			}
		}
	}
	return out
}

// Step is one planned action.
type Step struct {
	Rule, Action string
}

// record is one alert_actions row.
type record struct {
	ActionID, Rule, Action, Outcome, Detail, Reversal string
}

// ActionID is the deterministic id of an alert's action.
func ActionID(alertID, action string) string { return alertID + "/" + action }

// Handle applies the responder rules to one alert (HandleBatch of one).
func (r *Responder) Handle(ctx context.Context, a *detect.Alert) error {
	return r.HandleBatch(ctx, []*detect.Alert{a})
}

// HandleBatch applies the responder rules to a batch of alerts. Its
// ClickHouse work is per batch, not per alert: one query for the actions
// already recorded, one insert of tickets, one audit append of every action
// and one insert of the action records (audited before recorded, as each
// action was before). ClickHouse and the control plane being away are
// waited out (retried with backoff); it returns an error only when ctx ends
// first (the batch is then re-delivered; actions already recorded are not
// repeated). An action the control plane refuses is recorded as failed.
func (r *Responder) HandleBatch(ctx context.Context, alerts []*detect.Alert) error {
	type planned struct {
		a     *detect.Alert
		steps []Step
	}
	var work []planned
	var ids []string
	for _, a := range alerts {
		if a.Revision != 0 {
			continue // updates of a raised alert are not new occurrences
		}
		if steps := Plan(r.opts.Rules, a); len(steps) > 0 {
			work = append(work, planned{a, steps})
			ids = append(ids, a.AlertID)
		}
	}
	if len(work) == 0 {
		return nil
	}
	var done map[string]bool
	err := bus.Retry(ctx, r.opts.Logger, "query alert actions", func(ctx context.Context) error {
		var err error
		done, err = r.recorded(ctx, ids)
		return err
	})
	if err != nil {
		return err
	}
	b := &actionBatch{}
	for _, w := range work {
		for _, st := range w.steps {
			id := ActionID(w.a.AlertID, st.Action)
			if done[id] {
				continue
			}
			done[id] = true // the same alert twice in a batch
			rec, err := r.act(ctx, w.a, st, b)
			if err != nil {
				// ctx ended while the control plane was away: nothing
				// of the batch is recorded, and it is handled again by
				// whoever consumes it next.
				return err
			}
			rec.ActionID = id
			b.add(r, w.a, rec)
		}
	}
	if err := r.flush(ctx, b); err != nil {
		return err
	}
	r.mu.Lock()
	for _, rec := range b.records {
		r.done[rec.ActionID] = true
	}
	r.mu.Unlock()
	for _, rec := range b.records {
		r.actions.WithLabelValues(rec.Action, rec.Outcome).Inc()
	}
	return nil
}

// actionBatch collects a batch's writes.
type actionBatch struct {
	records []record
	rows    [][]any // alert_actions
	tickets [][]any // alert_tickets
	audits  []audit.Entry
}

func (b *actionBatch) add(r *Responder, a *detect.Alert, rec record) {
	now := r.opts.Now()
	b.records = append(b.records, rec)
	b.audits = append(b.audits, r.auditEntry(a, rec))
	b.rows = append(b.rows, []any{
		rec.ActionID, a.AlertID, time.UnixMilli(a.TsMs).UTC(), rec.Rule, rec.Action, rec.Outcome, rec.Detail,
		a.Detector, a.Severity, a.CredentialID, a.SiteID, "responder:" + rec.Rule, rec.Reversal,
		now.UnixMilli(), uint64(now.UnixMicro()),
	})
}

// BatchAppender appends several audit entries at once, in order (the audit
// store's AppendAll: one insert); without it entries are appended one by one.
type BatchAppender interface {
	AppendAll(ctx context.Context, entries []audit.Entry) error
}

// flush writes a batch: tickets, then the audit entries, then the records.
func (r *Responder) flush(ctx context.Context, b *actionBatch) error {
	if len(b.tickets) > 0 {
		if err := bus.Retry(ctx, r.opts.Logger, "open tickets", func(ctx context.Context) error {
			return insertTicket.Insert(ctx, r.opts.Conn, b.tickets...)
		}); err != nil {
			return err
		}
	}
	if len(b.audits) > 0 {
		err := bus.Retry(ctx, r.opts.Logger, "audit responder actions", func(ctx context.Context) error {
			if ba, ok := r.opts.Auditor.(BatchAppender); ok {
				return ba.AppendAll(ctx, b.audits)
			}
			for len(b.audits) > 0 {
				if err := r.opts.Auditor.Append(ctx, b.audits[0]); err != nil {
					return err
				}
				b.audits = b.audits[1:]
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(b.rows) == 0 {
		return nil
	}
	return bus.Retry(ctx, r.opts.Logger, "record responder actions", func(ctx context.Context) error {
		return insertAction.Insert(ctx, r.opts.Conn, b.rows...)
	})
}

// recorded returns the actions already recorded for the given alerts (by
// this or another instance, before a crash or rebalance): one query.
func (r *Responder) recorded(ctx context.Context, alertIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	var ask []string
	r.mu.Lock()
	for _, id := range alertIDs {
		known := false
		for _, act := range []string{detect.ActionSuspend, detect.ActionWebhook, detect.ActionTicket} {
			if r.done[ActionID(id, act)] {
				out[ActionID(id, act)], known = true, true
			}
		}
		if !known {
			ask = append(ask, id)
		}
	}
	r.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	rows, err := recordedActionsSQL.Query(ctx, r.opts.Conn, chstorage.Args{"alert_ids": ask})
	if err != nil {
		return nil, fmt.Errorf("query alert actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan alert action: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// act carries out one step and says how it went (a ticket is added to b,
// written with the batch); it fails only when ctx ends while the control
// plane is away.
func (r *Responder) act(ctx context.Context, a *detect.Alert, st Step, b *actionBatch) (record, error) {
	rec := record{Rule: st.Rule, Action: st.Action}
	dry := r.opts.Rules.Responders.DryRun
	switch st.Action {
	case detect.ActionSuspend:
		rec.Reversal = fmt.Sprintf("a human reactivates credential %s through the control plane (suspended → active), then sets alert %s to false_positive or resolved", a.CredentialID, a.AlertID)
		switch {
		case a.CredentialID == "":
			rec.Outcome, rec.Detail, rec.Reversal = OutcomeSkipped, "the alert names no credential", ""
		case r.opts.Suspender == nil:
			rec.Outcome, rec.Detail, rec.Reversal = OutcomeSkipped, "no control plane connected", ""
		case !r.allow(ctx, a.SiteID):
			rec.Outcome, rec.Reversal = OutcomeRateLimited, ""
			rec.Detail = fmt.Sprintf("more than %d automatic suspensions in a minute at site %q; left to a human", r.opts.Rules.Responders.MaxSuspensionsPerMinute, a.SiteID)
		case dry:
			rec.Outcome, rec.Detail = OutcomeDryRun, "would suspend credential "+a.CredentialID
		default:
			reason := fmt.Sprintf("%s alert %s (%s): %s", a.Detector, a.AlertID, a.Severity, a.Explanation)
			err := bus.Retry(ctx, r.opts.Logger, "suspend credential", func(ctx context.Context) error {
				return r.opts.Suspender.Suspend(ctx, a.CredentialID, reason, "responder:"+st.Rule)
			})
			var refused *bus.PermanentError
			switch {
			case errors.As(err, &refused):
				rec.Outcome, rec.Detail, rec.Reversal = OutcomeFailed, refused.Err.Error(), ""
			case err != nil:
				return rec, err
			default:
				rec.Outcome, rec.Detail = OutcomeDone, "suspended credential "+a.CredentialID
			}
		}
	case detect.ActionWebhook:
		rec.Reversal = "none needed: a notification; the receiver is told of status changes through the API"
		switch {
		case r.opts.WebhookURL == "":
			rec.Outcome, rec.Detail, rec.Reversal = OutcomeSkipped, "no webhook configured", ""
		case dry:
			rec.Outcome, rec.Detail = OutcomeDryRun, "would notify the webhook"
		default:
			if err := retry(ctx, 3, func(ctx context.Context) error { return r.notify(ctx, a, st) }); err != nil {
				rec.Outcome, rec.Detail = OutcomeFailed, err.Error()
			} else {
				rec.Outcome, rec.Detail = OutcomeDone, "webhook notified"
			}
		}
	case detect.ActionTicket:
		ticket := "T-" + a.AlertID
		rec.Reversal = fmt.Sprintf("close ticket %s (alert_tickets status closed) or set alert %s to false_positive", ticket, a.AlertID)
		if dry {
			rec.Outcome, rec.Detail = OutcomeDryRun, "would open ticket "+ticket
			break
		}
		// Written with the batch, before its records (retried while
		// ClickHouse is away, like the batch's other writes).
		b.tickets = append(b.tickets, r.ticketRow(a, ticket))
		rec.Outcome, rec.Detail = OutcomeDone, "opened ticket "+ticket
	}
	return rec, nil
}

// allow takes a slot of the site's suspension budget (a sliding minute).
// Alerts are keyed by site on the alerts topic, so one instance owns a
// site's alerts; the suspensions alert_actions recorded in the last minute
// (by a previous owner, before a rebalance or restart) count too.
//
// The recorded ones are read once per site and process (when this instance
// first meets the site, e.g. after a rebalance): from then on this instance
// owns the site's alerts, and its own memory is complete.
func (r *Responder) allow(ctx context.Context, site string) bool {
	limit := r.opts.Rules.Responders.MaxSuspensionsPerMinute
	now := r.opts.Now()
	r.mu.Lock()
	seen := r.seenSite[site]
	r.mu.Unlock()
	if !seen {
		stored, err := r.storedSuspensions(ctx, site, now)
		if err != nil {
			r.opts.Logger.Warn("suspension budget: recorded suspensions unavailable; counting this instance's only", "err", err)
		}
		r.mu.Lock()
		r.seenSite[site] = err == nil
		r.rate[site] = append(r.rate[site], stored...)
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	recent := r.rate[site][:0]
	for _, t := range r.rate[site] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	r.rate[site] = recent
	if len(recent) >= limit {
		return false
	}
	r.rate[site] = append(recent, now)
	return true
}

// storedSuspensions returns when the suspensions recorded at a site in the
// last minute were done.
func (r *Responder) storedSuspensions(ctx context.Context, site string, now time.Time) ([]time.Time, error) {
	rows, err := recentSuspensionsSQL.Query(ctx, r.opts.Conn, chstorage.Args{
		"site_id": site, "since_ms": now.Add(-time.Minute).UnixMilli()})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, err
		}
		out = append(out, time.UnixMilli(ms))
	}
	return out, rows.Err()
}

func retry(ctx context.Context, attempts int, fn func(context.Context) error) error {
	var err error
	for i := range attempts {
		if err = fn(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(200*(1<<i)) * time.Millisecond):
		}
	}
	return err
}

// WebhookBody is what the webhook receives.
type WebhookBody struct {
	Rule  string       `json:"rule"`
	Alert detect.Alert `json:"alert"`
}

func (r *Responder) notify(ctx context.Context, a *detect.Alert, st Step) error {
	body, err := json.Marshal(WebhookBody{Rule: st.Rule, Alert: *a})
	if err != nil {
		return err
	}
	ts := r.opts.Now().Unix()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.opts.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyfleet-responder/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(r.opts.WebhookSecret, ts, body))
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: status %d", resp.StatusCode)
	}
	return nil
}

var (
	recordedActionsSQL   = chstorage.Query("respond/recorded_actions")
	recentSuspensionsSQL = chstorage.Query("respond/recent_suspensions")
	insertTicket         = chstorage.Query("respond/insert_ticket")
	insertAction         = chstorage.Query("respond/insert_action")
)

func (r *Responder) ticketRow(a *detect.Alert, id string) []any {
	now := r.opts.Now()
	title := fmt.Sprintf("[%s] %s", a.Severity, a.Detector)
	if a.SiteID != "" {
		title += " at " + a.SiteID
	}
	body := a.Explanation + "\n\nSuggested action: " + a.SuggestedAction
	return []any{
		id, a.AlertID, time.UnixMilli(a.TsMs).UTC(), a.Detector, a.Severity, title, body,
		a.SubjectID, a.CredentialID, a.DoorID, a.SiteID, "open", "", now.UnixMilli(), now.UnixMilli(), uint64(now.UnixMicro()),
	}
}

// auditEntry is the action's audit entry, with the alert that caused it.
func (r *Responder) auditEntry(a *detect.Alert, rec record) audit.Entry {
	target := a.CredentialID
	if rec.Action != detect.ActionSuspend || target == "" {
		target = a.AlertID
	}
	e := audit.Entry{
		Actor: "responder:" + rec.Rule, Action: "responder." + rec.Action, Target: target, TsMs: r.opts.Now().UnixMilli(),
		Details: map[string]string{
			"alert_id": a.AlertID, "detector": a.Detector, "severity": a.Severity, "site_id": a.SiteID,
			"credential_id": a.CredentialID, "outcome": rec.Outcome, "detail": rec.Detail,
			"dry_run": strconv.FormatBool(r.opts.Rules.Responders.DryRun), "reversal": rec.Reversal,
			"action_id": rec.ActionID,
		},
	}
	return e
}
