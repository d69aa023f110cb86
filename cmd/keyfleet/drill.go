package main

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
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// runDrill implements `keyfleet drill revoke --subjects N`: the quarterly
// revocation drill, automated. Against a running keyfleet (HTTP API) it
// issues one test credential to each of N drill subjects across the
// estate's door groups, revokes every subject at once, and reports the time
// to disable (request → entitlement records), the time to confirm
// propagation (request → last lock ack) and the stragglers: locks that had
// not confirmed when the drill gave up.
func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(stderr, "Usage: keyfleet drill revoke --subjects N [flags]")
		return usageError{errors.New("want the subcommand revoke")}
	}
	var d drill
	var groups string
	fs := flagenv.New("drill revoke", "Revocation drill against a running keyfleet: issue test credentials to N subjects across the\n"+
		"estate, revoke them all at once, report time to disable, time to confirm propagation and stragglers.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&d.base, "url", "KEYFLEET_URL", "http://127.0.0.1:8080", "keyfleet API base URL")
	fs.Secret(&d.token, "token", "KEYFLEET_TOKEN", "API token with the manager (or admin) role")
	fs.Secret(&d.approver, "approver-token", "KEYFLEET_DRILL_APPROVER_TOKEN",
		"a second manager's token, to approve drill credentials whose door groups go beyond the role template")
	fs.Int(&d.subjects, "subjects", "KEYFLEET_DRILL_SUBJECTS", 10, "number of drill subjects (one credential each)")
	fs.String(&d.role, "role", "KEYFLEET_DRILL_ROLE", "resident", "role template of the drill credentials")
	fs.String(&groups, "door-groups", "KEYFLEET_DRILL_DOOR_GROUPS", "",
		"comma-separated door groups added to the role template's (default: every group of the estate the template allows\n"+
			"        without an exception, e.g. unit:* for residents)")
	fs.String(&d.site, "site", "KEYFLEET_DRILL_SITE", "", "site of the drill credentials (empty: every site)")
	fs.Duration(&d.timeout, "timeout", "KEYFLEET_DRILL_TIMEOUT", 2*time.Minute,
		"how long to wait for every lock to confirm before reporting stragglers (waiting for the drill credentials to be issued may take up to 1m)")
	fs.Bool(&d.json, "json", "KEYFLEET_DRILL_JSON", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	if d.subjects < 1 || d.subjects > 10000 {
		return usageError{fmt.Errorf("--subjects %d: want 1..10000", d.subjects)}
	}
	if d.token == "" {
		return usageError{errors.New("--token (KEYFLEET_TOKEN) is required")}
	}
	d.groups = flagenv.SplitList(groups)
	d.client = &http.Client{Timeout: 30 * time.Second}
	rep, err := d.run(ctx, stderr)
	if err != nil {
		return err
	}
	if d.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

// issueWait is the least time the drill waits for its credentials to be
// issued before it revokes them.
const issueWait = time.Minute

type drill struct {
	base, token, approver string
	subjects              int
	role, site            string
	groups                []string
	timeout               time.Duration
	json                  bool
	client                *http.Client
}

// DrillReport is the drill's result.
type DrillReport struct {
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
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(d.base, "/")+path, rd)
	if err != nil {
		return 0, usageError{err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
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

func (d *drill) run(ctx context.Context, progress io.Writer) (*DrillReport, error) {
	start := time.Now()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	rep := &DrillReport{RunID: "drill-" + hex.EncodeToString(b), Subjects: d.subjects, Stragglers: []Straggler{}}
	groups, err := d.doorGroups(ctx)
	if err != nil {
		return nil, err
	}
	rep.DoorGroups = groups

	// 1. Issue one credential per drill subject (one bulk request).
	evidence := base64.StdEncoding.EncodeToString([]byte("keyfleet revocation drill " + rep.RunID))
	reqs := make([]control.CredentialRequest, d.subjects)
	for i := range reqs {
		subject := fmt.Sprintf("%s-%05d", rep.RunID, i)
		reqs[i] = control.CredentialRequest{SubjectID: subject, Role: d.role, SiteID: d.site, DoorGroups: groups,
			DeviceID: "dev-" + subject, Attestation: &control.AttestationInput{Format: "aliro", Evidence: evidence},
			Reason: "revocation drill " + rep.RunID}
	}
	var pr control.ProvisionResponse
	if _, err := d.call(ctx, d.token, http.MethodPost, "/v1/credentials:bulk", reqs, &pr, "Idempotency-Key", rep.RunID); err != nil {
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
	fmt.Fprintf(progress, "drill %s: revoking %d subjects\n", rep.RunID, d.subjects)
	revs := make([]string, d.subjects)
	errs := make([]error, d.subjects)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var out control.SubjectRevokeResponse
			_, errs[i] = d.call(ctx, d.token, http.MethodPost, "/v1/subjects/"+url.PathEscape(r.SubjectID)+":revoke",
				map[string]string{"reason": "revocation drill " + rep.RunID}, &out)
			revs[i] = out.RevocationID
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("revoke drill subjects: %w", err)
	}

	// 3. Watch the revocations until all confirmed or the timeout.
	final := make([]*control.Revocation, d.subjects)
	deadline := time.Now().Add(d.timeout)
	for {
		pending := 0
		for i, id := range revs {
			if final[i] != nil && final[i].Status == "confirmed" {
				continue
			}
			var rv control.Revocation
			if _, err := d.call(ctx, d.token, http.MethodGet, "/v1/revocations/"+id, nil, &rv); err != nil {
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
	if len(d.groups) > 0 {
		return d.groups, nil
	}
	var tpls struct {
		Templates []control.Template `json:"templates"`
	}
	if _, err := d.call(ctx, d.token, http.MethodGet, "/v1/templates", nil, &tpls); err != nil {
		return nil, err
	}
	var dg struct {
		DoorGroups []struct {
			Group string `json:"group"`
		} `json:"door_groups"`
	}
	if _, err := d.call(ctx, d.token, http.MethodGet, "/v1/door-groups", nil, &dg); err != nil {
		return nil, err
	}
	var t *control.Template
	for i := range tpls.Templates {
		if tpls.Templates[i].Role == d.role {
			t = &tpls.Templates[i]
		}
	}
	if t == nil {
		return nil, usageError{fmt.Errorf("--role %q: no such role template", d.role)}
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
		return nil, fmt.Errorf("the lock registry has no door group the %s template covers; pass --door-groups", d.role)
	}
	return out, nil
}

// waitIssued waits until the drill request is no longer pending, approving
// credentials that wait for an approval when an approver token is given.
func (d *drill) waitIssued(ctx context.Context, pr control.ProvisionResponse) error {
	approved := map[string]bool{}
	// Issuance is set-up, not what the drill measures: it may take longer
	// than --timeout (e.g. while the control plane's consumer group joins).
	wait := max(d.timeout, issueWait)
	deadline := time.Now().Add(wait)
	for {
		var st control.RequestStatus
		if _, err := d.call(ctx, d.token, http.MethodGet, "/v1/requests/"+pr.RequestID+"?items=true", nil, &st); err != nil {
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
				if d.approver != "" && !approved[it.CredentialID] {
					if _, err := d.call(ctx, d.approver, http.MethodPost, "/v1/credentials/"+it.CredentialID+":approve",
						map[string]string{"reason": "revocation drill"}, nil); err != nil {
						return err
					}
					approved[it.CredentialID] = true
				}
			}
		}
		if waiting > 0 && d.approver == "" {
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

func (r *DrillReport) print(w io.Writer) {
	fmt.Fprintf(w, "revocation drill %s: %d subjects, %d credentials, %d lock revocations (door groups %s)\n",
		r.RunID, r.Subjects, r.Credentials, r.Locks, strings.Join(r.DoorGroups, ","))
	fmt.Fprintf(w, "  %-26s %8s %8s %8s %8s %6s\n", "", "p50", "p95", "p99", "max", "n")
	row := func(name string, d Distribution) {
		fmt.Fprintf(w, "  %-26s %7dms %7dms %7dms %7dms %6d\n", name, d.P50, d.P95, d.P99, d.Max, d.Count)
	}
	row("time to disable", r.TimeToDisable)
	row("time to confirm (locks)", r.TimeToConfirm)
	fmt.Fprintf(w, "  locks confirmed: %d of %d\n", r.Confirmed, r.Locks)
	if len(r.Stragglers) == 0 {
		fmt.Fprintln(w, "  stragglers: none")
	} else {
		fmt.Fprintf(w, "  stragglers (%d locks, oldest first):\n", len(r.Stragglers))
		for i, s := range r.Stragglers {
			if i == 20 {
				fmt.Fprintf(w, "    ... %d more (see --json)\n", len(r.Stragglers)-20)
				break
			}
			fmt.Fprintf(w, "    %s/%s  pending %s  (subject %s)\n", s.Vendor, s.LockID,
				(time.Duration(s.AgeMs) * time.Millisecond).Round(time.Millisecond), s.Subject)
		}
	}
	fmt.Fprintf(w, "  drill took %s\n", r.Elapsed.Round(time.Millisecond))
}
