// Package drill is the quarterly revocation drill, automated, against a
// running keyfleet over its HTTP API (`keyfleet drill revoke`).
package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
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
// issued before it revokes them.
const IssueWait = time.Minute

// Options configure a drill.
type Options struct {
	URL   string // keyfleet API base URL
	Token string // an API token with the manager (or admin) role
	// ApproverToken is a second manager's token, to approve drill
	// credentials whose door groups go beyond the role template.
	ApproverToken string
	Subjects      int    // drill subjects, one credential each
	Role          string // role template of the drill credentials
	Site          string // site of the drill credentials (empty: every site)
	// DoorGroups are added to the role template's (default: every group of
	// the estate the template allows without an exception).
	DoorGroups []string
	// Timeout is how long to wait for every lock to confirm before
	// reporting stragglers (issuing waits at least IssueWait).
	Timeout time.Duration
	Client  *http.Client // default: 30 s timeout per call
}

// ConfigError is a mistake in the Options the server revealed (a bad URL,
// an unknown role): the caller's to fix, not an outage.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

type drill struct {
	Options
}

// Run runs the drill: it issues one test credential to each of
// o.Subjects drill subjects across the estate's door groups, revokes every
// subject at once, and reports the time to disable (request → entitlement
// records), the time to confirm propagation (request → last lock ack) and
// the stragglers: locks that had not confirmed when it gave up. Progress
// lines go to progress.
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	d := &drill{o}
	return d.run(ctx, progress)
}

// Report is the drill's result.
type Report struct {
	RunID         string        `json:"run_id"`
	Subjects      int           `json:"subjects"`
	Credentials   int           `json:"credentials"`
	DoorGroups    []string      `json:"door_groups"`
	Locks         int           `json:"locks"` // lock revocations expected
	Confirmed     int           `json:"confirmed"`
	TimeToDisable Distribution  `json:"time_to_disable_ms"`
	TimeToConfirm Distribution  `json:"time_to_confirm_ms"`
	Stragglers    []Straggler   `json:"stragglers"`
	Unconfirmed   []string      `json:"unconfirmed_subjects,omitempty"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// Distribution summarizes per-subject times in milliseconds.
type Distribution struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50"`
	P95   int64 `json:"p95"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// Straggler is a lock that had not confirmed a drill revocation.
type Straggler struct {
	Subject      string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	AgeMs        int64  `json:"age_ms"`
}

func (d *drill) call(ctx context.Context, token, method, path string, body, out any, headers ...string) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(d.URL, "/")+path, rd)
	if err != nil {
		return 0, &ConfigError{err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func (d *drill) run(ctx context.Context, progress io.Writer) (*Report, error) {
	start := time.Now()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	rep := &Report{RunID: "drill-" + hex.EncodeToString(b), Subjects: d.Subjects, Stragglers: []Straggler{}}
	groups, err := d.doorGroups(ctx)
	if err != nil {
		return nil, err
	}
	rep.DoorGroups = groups

	// 1. Issue one credential per drill subject (one bulk request).
	evidence := base64.StdEncoding.EncodeToString([]byte("keyfleet revocation drill " + rep.RunID))
	reqs := make([]control.CredentialRequest, d.Subjects)
	for i := range reqs {
		subject := fmt.Sprintf("%s-%05d", rep.RunID, i)
		reqs[i] = control.CredentialRequest{SubjectID: subject, Role: d.Role, SiteID: d.Site, DoorGroups: groups,
			DeviceID: "dev-" + subject, Attestation: &control.AttestationInput{Format: "aliro", Evidence: evidence},
			Reason: "revocation drill " + rep.RunID}
	}
	var pr control.ProvisionResponse
	if _, err := d.call(ctx, d.Token, http.MethodPost, "/v1/credentials:bulk", reqs, &pr, "Idempotency-Key", rep.RunID); err != nil {
		return nil, fmt.Errorf("issue drill credentials: %w", err)
	}
	if pr.Rejected > 0 {
		return nil, fmt.Errorf("issue drill credentials: %d rejected, first: %s", pr.Rejected, pr.Failures[0].Reason)
	}
	fmt.Fprintf(progress, "drill %s: issuing %d credentials (door groups %s)\n", rep.RunID, pr.Accepted, strings.Join(groups, ","))
	if err := d.waitIssued(ctx, pr); err != nil {
		return nil, err
	}
	rep.Credentials = pr.Accepted

	// 2. Revoke every subject at once.
	fmt.Fprintf(progress, "drill %s: revoking %d subjects\n", rep.RunID, d.Subjects)
	revs := make([]string, d.Subjects)
	errs := make([]error, d.Subjects)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var out control.SubjectRevokeResponse
			_, errs[i] = d.call(ctx, d.Token, http.MethodPost, "/v1/subjects/"+url.PathEscape(r.SubjectID)+":revoke",
				map[string]string{"reason": "revocation drill " + rep.RunID}, &out)
			revs[i] = out.RevocationID
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("revoke drill subjects: %w", err)
	}

	// 3. Watch the revocations until all confirmed or the timeout.
	final := make([]*control.Revocation, d.Subjects)
	deadline := time.Now().Add(d.Timeout)
	for {
		pending := 0
		for i, id := range revs {
			if final[i] != nil && final[i].Status == "confirmed" {
				continue
			}
			var rv control.Revocation
			if _, err := d.call(ctx, d.Token, http.MethodGet, "/v1/revocations/"+id, nil, &rv); err != nil {
				if !strings.Contains(err.Error(), "404") {
					return nil, err
				}
			} else {
				final[i] = &rv
			}
			if final[i] == nil || final[i].Status != "confirmed" {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var disable, confirm []int64
	for i, rv := range final {
		subject := reqs[i].SubjectID
		if rv == nil {
			rep.Unconfirmed = append(rep.Unconfirmed, subject)
			continue
		}
		rep.Locks += rv.Layers.Locks.Total
		rep.Confirmed += rv.Layers.Locks.Done
		if rv.TimeToDisableMs > 0 {
			disable = append(disable, rv.TimeToDisableMs)
		}
		if rv.Status == "confirmed" {
			confirm = append(confirm, rv.TimeToConfirmMs)
			continue
		}
		rep.Unconfirmed = append(rep.Unconfirmed, subject)
		for _, l := range rv.PendingLocks {
			rep.Stragglers = append(rep.Stragglers, Straggler{Subject: subject, CredentialID: l.CredentialID,
				Vendor: l.Vendor, LockID: l.LockID, AgeMs: l.AgeMs})
		}
	}
	sort.Slice(rep.Stragglers, func(i, j int) bool { return rep.Stragglers[i].AgeMs > rep.Stragglers[j].AgeMs })
	rep.TimeToDisable, rep.TimeToConfirm = distribution(disable), distribution(confirm)
	rep.Elapsed = time.Since(start)
	return rep, nil
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
func (d *drill) waitIssued(ctx context.Context, pr control.ProvisionResponse) error {
	approved := map[string]bool{}
	// Issuance is set-up, not what the drill measures: it may take longer
	// than --timeout (e.g. while the control plane's consumer group joins).
	wait := max(d.Timeout, IssueWait)
	deadline := time.Now().Add(wait)
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
			return fmt.Errorf("drill credentials not issued after %s: %v", wait, st.Counts)
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
