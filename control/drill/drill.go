// Package drill is the revocation drill, automated, against a running
// keyfleet over its HTTP API (`keyfleet drill termination|lost-device|breach`):
// it issues drill credentials to drill subjects, has their phones attest
// them (a device provider answers the challenges), waits until the locks
// hold them, revokes them the way the scenario says, and times each layer —
// entitlement, device session, every lock — until all confirmed or the
// timeout names the stragglers. The run is stored (POST /v1/drills).
//
// Scenarios:
//
//	termination   every credential of each drill subject (POST /v1/subjects/{id}:revoke)
//	lost-device   each subject has a phone and a tablet; the phone is lost
//	              (POST /v1/devices/{id}:revoke); the tablet's credential must stay active
//	breach        one mass revocation of the site's drill credentials (POST /v1/revocations, scope site)
//
// With a ticket system (--ticket-url) the drill opens an incident ticket
// when it revokes and closes it once every layer is confirmed:
//
//	POST <ticket-url> {"action":"open","run_id","scenario","title","opened_ms"} → 2xx {"ticket_id"}
//	POST <ticket-url> {"action":"close","ticket_id","run_id","resolution","closed_ms"} → 2xx
//
// and reports the time from the revocation request to the ticket closed.
package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/control"
)

// IssueWait is the least time the drill waits for its credentials to be
// issued, activated and held by their locks before it revokes them.
const IssueWait = time.Minute

// Options configure a drill.
type Options struct {
	URL   string // keyfleet API base URL
	Token string // an API token with the manager (or admin) role
	// ApproverToken is a second manager's token, to approve drill
	// credentials whose door groups go beyond the role template.
	ApproverToken string
	// Scenario is one of control.DrillScenarios (default termination).
	Scenario string
	Subjects int    // drill subjects
	Role     string // role template of the drill credentials
	Site     string // site of the drill credentials (breach: required)
	// DoorGroups are added to the role template's (default: every group of
	// the estate the template allows without an exception).
	DoorGroups []string
	// Timeout is how long to wait for every layer to confirm before
	// reporting stragglers (setting up waits at least IssueWait).
	Timeout time.Duration
	// DeviceURL is the device provider that attests the drill phones for
	// keyfleet's challenges (POST {DeviceURL}/v1/devices/{device}/attestations,
	// as sim/wallet serves it); AttestFormat the evidence format (default
	// apple_app_attest). Drill credentials open nothing until activated.
	DeviceURL    string
	AttestFormat string
	// TicketURL, when set, is the incident ticket system (see the package
	// comment).
	TicketURL string
	// NoRecord skips storing the run (POST /v1/drills).
	NoRecord bool
	Client   *http.Client // default: 30 s timeout per call
}

// ConfigError is a mistake in the Options the server revealed (a bad URL,
// an unknown role): the caller's to fix, not an outage.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Report is the drill's result.
type Report struct {
	RunID       string   `json:"run_id"`
	Scenario    string   `json:"scenario"`
	Subjects    int      `json:"subjects"`
	Credentials int      `json:"credentials"`
	Revocations int      `json:"revocations"`
	DoorGroups  []string `json:"door_groups"`
	Site        string   `json:"site,omitempty"`
	Locks       int      `json:"locks"` // lock revocations expected
	Confirmed   int      `json:"confirmed"`
	Failed      int      `json:"failed"` // locks keyfleet gave up on
	// TimeToDisable: request → every entitlement record of a revocation.
	TimeToDisable Distribution `json:"time_to_disable_ms"`
	// TimeToSession: request → every device session of a revocation revoked.
	TimeToSession Distribution `json:"time_to_session_ms"`
	// TimeToConfirm: request → the last lock of a revocation (confirmed ones).
	TimeToConfirm Distribution `json:"time_to_confirm_ms"`
	// LockConfirm: request → each lock's acknowledgement, over every lock
	// that confirmed (whether or not its revocation completed).
	LockConfirm Distribution   `json:"lock_confirm_ms"`
	Sessions    SessionSummary `json:"sessions"`
	Stragglers  []Straggler    `json:"stragglers"`
	// Unconfirmed are the revocations not confirmed when the drill ended.
	Unconfirmed []string `json:"unconfirmed_revocations,omitempty"`
	// AttestationRefused counts activations keyfleet refused (forged
	// evidence from a phone; the drill asked it again).
	AttestationRefused int `json:"attestation_refused"`
	// NotHeld counts the credentials not yet on all their locks when the
	// drill revoked (setting up ran out of time): their revocations waited
	// behind the grants.
	NotHeld int `json:"not_held_at_revocation,omitempty"`
	// KeptActive (lost-device) counts the credentials on the devices not
	// lost that stayed active, of KeptExpected.
	KeptActive   int           `json:"kept_active,omitempty"`
	KeptExpected int           `json:"kept_expected,omitempty"`
	Ticket       *Ticket       `json:"ticket,omitempty"`
	StartedMs    int64         `json:"started_ms"`
	FinishedMs   int64         `json:"finished_ms"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	Stored       bool          `json:"stored"`
}

// Distribution summarizes times in milliseconds; Count 0 means nothing
// was measured (printed n/a, not 0).
type Distribution struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50"`
	P95   int64 `json:"p95"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// SessionSummary is the device-session layer over the drill's revocations.
type SessionSummary struct {
	State         string `json:"state"` // done, pending, failed, not_configured
	Done          int    `json:"done"`
	Failed        int    `json:"failed"`
	Pending       int    `json:"pending"`
	NotConfigured int    `json:"not_configured"`
	Why           string `json:"why,omitempty"`
}

// Straggler is a lock that had not confirmed a drill revocation.
type Straggler struct {
	RevocationID string `json:"revocation_id"`
	Subject      string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	AgeMs        int64  `json:"age_ms"`
	Attempts     int    `json:"attempts"`
	Failed       bool   `json:"failed,omitempty"` // given up
	Error        string `json:"error,omitempty"`
}

// Ticket is the drill's incident ticket.
type Ticket struct {
	ID            string `json:"ticket_id"`
	OpenedMs      int64  `json:"opened_ms"`
	ClosedMs      int64  `json:"closed_ms,omitempty"`
	TimeToCloseMs int64  `json:"time_to_close_ms,omitempty"` // revocation request → closed
	Error         string `json:"error,omitempty"`
}

type drill struct {
	Options
	progress io.Writer
}

// Run runs the drill; progress lines go to progress.
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Scenario == "" || o.Scenario == "revoke" {
		o.Scenario = control.DrillTermination
	}
	if !slices.Contains(control.DrillScenarios, o.Scenario) {
		return nil, &ConfigError{fmt.Errorf("scenario %q: want one of %s", o.Scenario, strings.Join(control.DrillScenarios, ", "))}
	}
	if o.Scenario == control.DrillBreach && o.Site == "" {
		return nil, &ConfigError{errors.New("the breach drill revokes at one site: --site is required")}
	}
	if o.DeviceURL == "" {
		return nil, &ConfigError{errors.New("--device-url is required: drill credentials open nothing until their phones " +
			"attest them (a device provider answering attestation challenges, e.g. `keyfleet simulate --wallet-addr`)")}
	}
	if o.AttestFormat == "" {
		o.AttestFormat = "apple_app_attest"
	}
	d := &drill{Options: o, progress: progress}
	return d.run(ctx)
}

func (d *drill) call(ctx context.Context, token, method, path string, body, out any, headers ...string) (int, error) {
	return d.callURL(ctx, token, method, strings.TrimRight(d.URL, "/")+path, body, out, headers...)
}

func (d *drill) callURL(ctx context.Context, token, method, u string, body, out any, headers ...string) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, &ConfigError{err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, req.URL.Path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
		}
	}
	return resp.StatusCode, nil
}

// parallel runs fn for 0..n-1, at most 16 at once, and joins the errors.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drillCred is one drill credential.
type drillCred struct {
	subject, device string
	lost            bool // lost-device: on the phone that is lost
	req             control.CredentialRequest
	id              string
}

func (d *drill) run(ctx context.Context) (*Report, error) {
	start := time.Now()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	rep := &Report{RunID: "drill-" + hex.EncodeToString(b), Scenario: d.Scenario, Subjects: d.Subjects, Site: d.Site,
		Stragglers: []Straggler{}, StartedMs: start.UnixMilli()}
	groups, err := d.doorGroups(ctx)
	if err != nil {
		return nil, err
	}
	rep.DoorGroups = groups

	// 1. One credential per drill subject (lost-device: one on a phone,
	// one on a tablet), in one bulk request.
	var creds []*drillCred
	for i := range d.Subjects {
		subject := fmt.Sprintf("%s-%05d", rep.RunID, i)
		devices := []string{"phone-" + subject}
		if d.Scenario == control.DrillLostDevice {
			devices = append(devices, "tablet-"+subject)
		}
		for j, dev := range devices {
			creds = append(creds, &drillCred{subject: subject, device: dev, lost: d.Scenario == control.DrillLostDevice && j == 0,
				req: control.CredentialRequest{SubjectID: subject, Role: d.Role, SiteID: d.Site, DoorGroups: groups,
					DeviceID: dev, Reason: "revocation drill " + rep.RunID}})
		}
	}
	reqs := make([]control.CredentialRequest, len(creds))
	for i, c := range creds {
		reqs[i] = c.req
	}
	var pr control.ProvisionResponse
	if _, err := d.call(ctx, d.Token, http.MethodPost, "/v1/credentials:bulk", reqs, &pr, "Idempotency-Key", rep.RunID); err != nil {
		return nil, fmt.Errorf("issue drill credentials: %w", err)
	}
	if pr.Rejected > 0 {
		return nil, fmt.Errorf("issue drill credentials: %d rejected, first: %s", pr.Rejected, pr.Failures[0].Reason)
	}
	for i, id := range pr.CredentialIDs {
		creds[i].id = id
	}
	fmt.Fprintf(d.progress, "drill %s (%s): issuing %d credentials to %d subjects\n", rep.RunID, d.Scenario, pr.Accepted, d.Subjects)
	setup := time.Now().Add(max(d.Timeout, IssueWait))
	if err := d.waitIssued(ctx, pr, setup); err != nil {
		return nil, err
	}
	rep.Credentials = pr.Accepted

	// 2. Their phones attest them; keyfleet grants them on their locks.
	fmt.Fprintf(d.progress, "drill %s: activating %d credentials with device attestation\n", rep.RunID, len(creds))
	var mu sync.Mutex
	if err := parallel(len(creds), func(i int) error {
		refused, err := d.activate(ctx, creds[i])
		mu.Lock()
		rep.AttestationRefused += refused
		mu.Unlock()
		return err
	}); err != nil {
		return nil, fmt.Errorf("activate drill credentials: %w", err)
	}
	notHeld, err := d.waitHeld(ctx, creds, setup)
	if err != nil {
		return nil, err
	}
	if notHeld > 0 {
		rep.NotHeld = notHeld
		fmt.Fprintf(d.progress, "drill %s: %d credentials not yet on all their locks after %s (slow or offline gateways); "+
			"revoking anyway: their revocations queue behind the grants\n", rep.RunID, notHeld, max(d.Timeout, IssueWait))
	}

	// 3. Revoke, as the scenario says; open the incident ticket.
	fmt.Fprintf(d.progress, "drill %s: revoking (%s)\n", rep.RunID, d.Scenario)
	revStart := time.Now()
	if d.TicketURL != "" {
		rep.Ticket = d.openTicket(ctx, rep)
	}
	revs, err := d.revoke(ctx, creds)
	if err != nil {
		return nil, err
	}
	rep.Revocations = len(revs)

	// 4. Watch every layer until confirmed (or failed), or the timeout.
	final := d.watch(ctx, revs, time.Now().Add(d.Timeout))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	subjectOf := map[string]string{}
	for _, c := range creds {
		subjectOf[c.id] = c.subject
	}
	d.summarize(rep, revs, final, subjectOf)
	if rep.Ticket != nil && rep.Ticket.Error == "" && len(rep.Unconfirmed) == 0 {
		d.closeTicket(ctx, rep, revStart)
	}
	if d.Scenario == control.DrillLostDevice {
		for _, c := range creds {
			if c.lost {
				continue
			}
			rep.KeptExpected++
			var v control.CredentialView
			if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/credentials/"+c.id, nil, &v); err == nil &&
				v.Credential != nil && v.Credential.State == "active" {
				rep.KeptActive++
			}
		}
	}
	rep.Elapsed = time.Since(start)
	rep.FinishedMs = time.Now().UnixMilli()
	if !d.NoRecord {
		if err := d.record(ctx, rep); err != nil {
			fmt.Fprintf(d.progress, "drill %s: not stored: %v\n", rep.RunID, err)
		} else {
			rep.Stored = true
		}
	}
	return rep, nil
}

// activate activates one credential: a challenge, the phone's attestation
// of it, the activation. A refused attestation (a forged phone) is asked
// again, up to three times; it returns how many were refused.
func (d *drill) activate(ctx context.Context, c *drillCred) (int, error) {
	refused := 0
	for attempt := 0; ; attempt++ {
		var ch control.ChallengeResponse
		if _, err := d.call(ctx, d.Token, http.MethodPost, "/v1/attestation/challenge", control.ChallengeRequest{
			CredentialID: c.id, DeviceID: c.device}, &ch); err != nil {
			return refused, err
		}
		var ev struct {
			Evidence string               `json:"evidence"`
			Device   *control.DeviceInput `json:"device"` // what the phone's app reports
		}
		if _, err := d.callURL(ctx, "", http.MethodPost, strings.TrimRight(d.DeviceURL, "/")+"/v1/devices/"+
			url.PathEscape(c.device)+"/attestations", map[string]string{"format": d.AttestFormat, "challenge": ch.Challenge},
			&ev); err != nil {
			return refused, fmt.Errorf("device %s: %w", c.device, err)
		}
		status, err := d.call(ctx, d.Token, http.MethodPost, "/v1/credentials/"+c.id+":activate", map[string]any{
			"device_id": c.device, "reason": "revocation drill",
			"attestation": control.AttestationInput{Format: d.AttestFormat, Evidence: ev.Evidence, Challenge: ch.Challenge,
				Device: ev.Device}}, nil)
		if err == nil {
			return refused, nil
		}
		if status != http.StatusUnprocessableEntity || attempt == 2 {
			return refused, err
		}
		refused++
	}
}

// waitHeld waits until every lock of every drill credential holds it (so
// the revocation times measure revocation, not a grant still on its way),
// or the deadline; it returns how many credentials were not held by all
// their locks then.
func (d *drill) waitHeld(ctx context.Context, creds []*drillCred, deadline time.Time) (int, error) {
	pending := slices.Clone(creds)
	for {
		var next []*drillCred
		for _, c := range pending {
			var v control.CredentialView
			if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/credentials/"+c.id, nil, &v); err != nil {
				return 0, err
			}
			held := v.Credential != nil && v.Credential.State == "active" && len(v.Locks) >= len(v.Credential.Locks)
			for _, l := range v.Locks {
				held = held && l.State == control.LockHeld
			}
			if !held {
				next = append(next, c)
			}
		}
		if len(next) == 0 || time.Now().After(deadline) {
			return len(next), nil
		}
		pending = next
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// revocation is one revocation the drill made.
type revocation struct {
	id   string
	ids  []string // credentials
	sent int64
}

func (d *drill) revoke(ctx context.Context, creds []*drillCred) ([]revocation, error) {
	reason := map[string]string{"reason": "revocation drill (" + d.Scenario + ")"}
	switch d.Scenario {
	case control.DrillBreach:
		ids := make([]string, len(creds))
		for i, c := range creds {
			ids[i] = c.id
		}
		var out control.RevokeResponse
		if _, err := d.call(ctx, d.Token, http.MethodPost, "/v1/revocations", control.MassRevocation{Scope: control.ScopeSite,
			SiteID: d.Site, CredentialIDs: ids, Reason: reason["reason"]}, &out); err != nil {
			return nil, fmt.Errorf("breach revocation: %w", err)
		}
		return []revocation{{id: out.RevocationID, ids: out.CredentialIDs, sent: time.Now().UnixMilli()}}, nil
	case control.DrillLostDevice:
		var lost []*drillCred
		for _, c := range creds {
			if c.lost {
				lost = append(lost, c)
			}
		}
		revs := make([]revocation, len(lost))
		err := parallel(len(lost), func(i int) error {
			var out control.RevokeResponse
			_, err := d.call(ctx, d.Token, http.MethodPost, "/v1/devices/"+url.PathEscape(lost[i].device)+":revoke", reason, &out)
			revs[i] = revocation{id: out.RevocationID, ids: out.CredentialIDs, sent: time.Now().UnixMilli()}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("revoke lost devices: %w", err)
		}
		return revs, nil
	}
	var subjects []string
	for _, c := range creds {
		if !slices.Contains(subjects, c.subject) {
			subjects = append(subjects, c.subject)
		}
	}
	revs := make([]revocation, len(subjects))
	err := parallel(len(subjects), func(i int) error {
		var out control.RevokeResponse
		_, err := d.call(ctx, d.Token, http.MethodPost, "/v1/subjects/"+url.PathEscape(subjects[i])+":revoke", reason, &out)
		revs[i] = revocation{id: out.RevocationID, ids: out.CredentialIDs, sent: time.Now().UnixMilli()}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoke drill subjects: %w", err)
	}
	return revs, nil
}

// settled reports whether a revocation has nothing left to wait for.
func settled(rv *control.Revocation) bool {
	return rv != nil && (rv.Status == control.RevocationConfirmed || rv.Status == control.RevocationFailed)
}

// watch polls the revocations until each is confirmed or failed, or the
// deadline.
func (d *drill) watch(ctx context.Context, revs []revocation, deadline time.Time) []*control.Revocation {
	final := make([]*control.Revocation, len(revs))
	for {
		pending := 0
		for i, r := range revs {
			if settled(final[i]) {
				continue
			}
			var rv control.Revocation
			if status, err := d.call(ctx, d.Token, http.MethodGet, "/v1/revocations/"+r.id, nil, &rv); err == nil {
				final[i] = &rv
			} else if status != http.StatusNotFound && ctx.Err() == nil {
				fmt.Fprintf(d.progress, "drill: %v\n", err)
			}
			if !settled(final[i]) {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return final
		}
		select {
		case <-ctx.Done():
			return final
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *drill) summarize(rep *Report, revs []revocation, final []*control.Revocation, subjectOf map[string]string) {
	var disable, session, confirm, perLock []int64
	for i, rv := range final {
		if rv == nil {
			rep.Unconfirmed = append(rep.Unconfirmed, revs[i].id)
			rep.Sessions.Pending += len(revs[i].ids)
			continue
		}
		rep.Locks += rv.Layers.Locks.Total
		rep.Confirmed += rv.Layers.Locks.Done
		rep.Failed += rv.Layers.Locks.Failed
		if rv.TimeToDisableMs > 0 {
			disable = append(disable, rv.TimeToDisableMs)
		}
		if rv.TimeToSessionMs > 0 {
			session = append(session, rv.TimeToSessionMs)
		}
		for _, c := range rv.Credentials {
			switch c.SessionState {
			case control.LayerDone:
				rep.Sessions.Done++
			case control.LayerFailed:
				rep.Sessions.Failed++
				if rep.Sessions.Why == "" {
					rep.Sessions.Why = c.SessionError
				}
			case control.LayerNotConfigured:
				rep.Sessions.NotConfigured++
				rep.Sessions.Why = rv.Layers.DeviceSession.Why
			default:
				rep.Sessions.Pending++
			}
		}
		for _, l := range rv.ConfirmedLocks {
			perLock = append(perLock, l.LatencyMs)
		}
		if rv.Status == control.RevocationConfirmed {
			confirm = append(confirm, rv.TimeToConfirmMs)
		} else {
			rep.Unconfirmed = append(rep.Unconfirmed, rv.RevocationID)
		}
		for k, ls := range [][]control.LockStatus{rv.PendingLocks, rv.FailedLocks} {
			for _, l := range ls {
				rep.Stragglers = append(rep.Stragglers, Straggler{RevocationID: rv.RevocationID, Subject: subjectOf[l.CredentialID],
					CredentialID: l.CredentialID, Vendor: l.Vendor, LockID: l.LockID, AgeMs: l.AgeMs, Attempts: l.Attempts,
					Failed: k == 1, Error: l.Error})
			}
		}
	}
	sort.Slice(rep.Stragglers, func(i, j int) bool {
		if rep.Stragglers[i].AgeMs != rep.Stragglers[j].AgeMs {
			return rep.Stragglers[i].AgeMs > rep.Stragglers[j].AgeMs
		}
		return rep.Stragglers[i].LockID < rep.Stragglers[j].LockID
	})
	rep.TimeToDisable, rep.TimeToSession = distribution(disable), distribution(session)
	rep.TimeToConfirm, rep.LockConfirm = distribution(confirm), distribution(perLock)
	s := &rep.Sessions
	switch {
	case s.Pending > 0:
		s.State = control.LayerPending
	case s.Failed > 0:
		s.State = control.LayerFailed
	case s.NotConfigured > 0:
		s.State = control.LayerNotConfigured
	default:
		s.State = control.LayerDone
	}
}

func (d *drill) openTicket(ctx context.Context, rep *Report) *Ticket {
	t := &Ticket{OpenedMs: time.Now().UnixMilli()}
	var out struct {
		TicketID string `json:"ticket_id"`
	}
	if _, err := d.callURL(ctx, "", http.MethodPost, d.TicketURL, map[string]any{"action": "open", "run_id": rep.RunID,
		"scenario": rep.Scenario, "title": fmt.Sprintf("revocation drill %s (%s): %d subjects", rep.RunID, rep.Scenario, rep.Subjects),
		"opened_ms": t.OpenedMs}, &out); err != nil {
		t.Error = err.Error()
		return t
	}
	t.ID = out.TicketID
	return t
}

func (d *drill) closeTicket(ctx context.Context, rep *Report, revStart time.Time) {
	t := rep.Ticket
	if _, err := d.callURL(ctx, "", http.MethodPost, d.TicketURL, map[string]any{"action": "close", "ticket_id": t.ID,
		"run_id": rep.RunID, "resolution": fmt.Sprintf("every layer confirmed: %d of %d locks", rep.Confirmed, rep.Locks),
		"closed_ms": time.Now().UnixMilli()}, nil); err != nil {
		t.Error = err.Error()
		return
	}
	t.ClosedMs = time.Now().UnixMilli()
	t.TimeToCloseMs = t.ClosedMs - revStart.UnixMilli()
}

// record stores the run (POST /v1/drills).
func (d *drill) record(ctx context.Context, rep *Report) error {
	doc, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	run := control.DrillRun{RunID: rep.RunID, Scenario: rep.Scenario, StartedMs: rep.StartedMs, FinishedMs: rep.FinishedMs,
		Subjects: rep.Subjects, Credentials: rep.Credentials, Revocations: rep.Revocations, Locks: rep.Locks,
		Confirmed: rep.Confirmed, Stragglers: len(rep.Stragglers), DisableP50Ms: orNone(rep.TimeToDisable, rep.TimeToDisable.P50),
		DisableP99Ms: orNone(rep.TimeToDisable, rep.TimeToDisable.P99), ConfirmP50Ms: orNone(rep.LockConfirm, rep.LockConfirm.P50),
		ConfirmP99Ms: orNone(rep.LockConfirm, rep.LockConfirm.P99), SessionState: rep.Sessions.State, TicketCloseMs: -1,
		Report: doc}
	if rep.Ticket != nil && rep.Ticket.TimeToCloseMs > 0 {
		run.TicketCloseMs = rep.Ticket.TimeToCloseMs
	}
	_, err = d.call(ctx, d.Token, http.MethodPost, "/v1/drills", run, nil)
	return err
}

func orNone(d Distribution, v int64) int64 {
	if d.Count == 0 {
		return -1
	}
	return v
}

// doorGroups returns the door groups the drill adds to the role template's:
// the flag's, or every group of the estate the template covers or allows
// without an exception.
func (d *drill) doorGroups(ctx context.Context) ([]string, error) {
	if len(d.DoorGroups) > 0 {
		return d.DoorGroups, nil
	}
	var tpls struct {
		Templates []control.Template `json:"templates"`
	}
	if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/templates", nil, &tpls); err != nil {
		return nil, err
	}
	var dg struct {
		DoorGroups []struct {
			Group string `json:"group"`
		} `json:"door_groups"`
	}
	if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/door-groups", nil, &dg); err != nil {
		return nil, err
	}
	var t *control.Template
	for i := range tpls.Templates {
		if tpls.Templates[i].Role == d.Role {
			t = &tpls.Templates[i]
		}
	}
	if t == nil {
		return nil, &ConfigError{fmt.Errorf("--role %q: no such role template", d.Role)}
	}
	var out []string
	for _, g := range dg.DoorGroups {
		ok := slices.Contains(t.DoorGroups, g.Group) || slices.Contains(t.DoorGroups, "*")
		for _, p := range t.ExtraGroupPrefix {
			ok = ok || strings.HasPrefix(g.Group, p)
		}
		if ok {
			out = append(out, g.Group)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the lock registry has no door group the %s template covers; pass --door-groups", d.Role)
	}
	return out, nil
}

// waitIssued waits until the drill request is no longer pending, approving
// credentials that wait for an approval when an approver token is given.
func (d *drill) waitIssued(ctx context.Context, pr control.ProvisionResponse, deadline time.Time) error {
	approved := map[string]bool{}
	for {
		var st control.RequestStatus
		if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/requests/"+pr.RequestID+"?items=true", nil, &st); err != nil {
			return err
		}
		if st.Status == "completed" {
			return nil
		}
		if st.Status == control.StatusFailed || st.Status == "completed_with_failures" {
			return fmt.Errorf("drill credentials failed: %+v", st.Failures)
		}
		waiting := 0
		for _, it := range st.Items {
			if it.Status == control.StatusPending && strings.HasPrefix(it.Detail, "awaiting approval") {
				waiting++
				if d.ApproverToken != "" && !approved[it.CredentialID] {
					if _, err := d.call(ctx, d.ApproverToken, http.MethodPost, "/v1/credentials/"+it.CredentialID+":approve",
						map[string]string{"reason": "revocation drill"}, nil); err != nil {
						return err
					}
					approved[it.CredentialID] = true
				}
			}
		}
		if waiting > 0 && d.ApproverToken == "" {
			return errors.New("drill credentials wait for approval (door groups beyond the role template): pass --approver-token or fewer --door-groups")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drill credentials not issued in time: %v", st.Counts)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func distribution(ms []int64) Distribution {
	if len(ms) == 0 {
		return Distribution{}
	}
	slices.Sort(ms)
	q := func(p float64) int64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	return Distribution{Count: len(ms), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms[len(ms)-1]}
}
