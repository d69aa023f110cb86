package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/drill"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

const drillUsage = "Usage: keyfleet drill termination|lost-device|breach [flags]   (revoke: termination)"

// runDrill implements `keyfleet drill SCENARIO`: a revocation drill
// (control/drill) against a running keyfleet.
func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "revoke" && !slices.Contains(control.DrillScenarios, args[0])) {
		fmt.Fprintln(stderr, drillUsage)
		return usageError{fmt.Errorf("want a scenario: %s", strings.Join(control.DrillScenarios, ", "))}
	}
	o := drill.Options{Scenario: args[0]}
	var groups string
	var asJSON bool
	fs := flagenv.New("drill "+args[0], "Revocation drill against a running keyfleet: issue test credentials to N subjects across the\n"+
		"estate, have their phones attest them, revoke them as the scenario says (termination: every credential of each\n"+
		"subject; lost-device: the phone of each subject, the tablet stays; breach: one mass revocation of a site), and report\n"+
		"each layer's times (disable, device session, every lock), the stragglers, and the ticket's time to close. The run is\n"+
		"stored (GET /v1/drills) and trended in the weekly report.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&o.URL, "url", "KEYFLEET_URL", "http://127.0.0.1:8080", "keyfleet API base URL")
	fs.Secret(&o.Token, "token", "KEYFLEET_TOKEN", "API token with the manager (or admin) role")
	fs.Secret(&o.ApproverToken, "approver-token", "KEYFLEET_DRILL_APPROVER_TOKEN",
		"a second manager's token, to approve drill credentials whose door groups go beyond the role template")
	fs.Int(&o.Subjects, "subjects", "KEYFLEET_DRILL_SUBJECTS", 10, "number of drill subjects")
	fs.String(&o.Role, "role", "KEYFLEET_DRILL_ROLE", "resident", "role template of the drill credentials")
	fs.String(&groups, "door-groups", "KEYFLEET_DRILL_DOOR_GROUPS", "",
		"comma-separated door groups added to the role template's (default: every group of the estate the template allows\n"+
			"        without an exception, e.g. unit:* for residents)")
	fs.String(&o.Site, "site", "KEYFLEET_DRILL_SITE", "", "site of the drill credentials (empty: every site; breach: required)")
	fs.String(&o.DeviceURL, "device-url", "KEYFLEET_DRILL_DEVICE_URL", "http://127.0.0.1:8091",
		"device provider that attests the drill phones for keyfleet's challenges (make run: the simulated wallet)")
	fs.String(&o.AttestFormat, "attest-format", "KEYFLEET_DRILL_ATTEST_FORMAT", "apple_app_attest",
		"attestation format the drill phones use (android_key_attestation, apple_app_attest, webauthn)")
	fs.String(&o.TicketURL, "ticket-url", "KEYFLEET_DRILL_TICKET_URL", "",
		"incident ticket system: the drill opens a ticket when it revokes and closes it once every layer is confirmed")
	fs.Bool(&o.NoRecord, "no-record", "KEYFLEET_DRILL_NO_RECORD", false, "do not store the run (POST /v1/drills)")
	fs.Duration(&o.Timeout, "timeout", "KEYFLEET_DRILL_TIMEOUT", 2*time.Minute,
		"how long to wait for every layer to confirm before reporting stragglers (setting up may take up to 1m besides)")
	fs.Bool(&asJSON, "json", "KEYFLEET_DRILL_JSON", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	if o.Subjects < 1 || o.Subjects > 10000 {
		return usageError{fmt.Errorf("--subjects %d: want 1..10000", o.Subjects)}
	}
	if o.Token == "" {
		return usageError{errors.New("--token (KEYFLEET_TOKEN) is required")}
	}
	o.DoorGroups = flagenv.SplitList(groups)
	rep, err := drill.Run(ctx, o, stderr)
	var ce *drill.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printDrill(stdout, rep)
	return nil
}

// printDrill writes the drill report as text.
func printDrill(w io.Writer, r *drill.Report) {
	site := ""
	if r.Site != "" {
		site = " at " + r.Site
	}
	fmt.Fprintf(w, "%s drill %s%s: %d subjects, %d credentials, %d revocations, %d lock revocations\n",
		r.Scenario, r.RunID, site, r.Subjects, r.Credentials, r.Revocations, r.Locks)
	fmt.Fprintf(w, "  door groups: %s\n", strings.Join(r.DoorGroups, ","))
	fmt.Fprintf(w, "  %-32s %9s %9s %9s %9s %6s\n", "", "p50", "p95", "p99", "max", "n")
	row := func(name string, d drill.Distribution) {
		if d.Count == 0 {
			fmt.Fprintf(w, "  %-32s %9s %9s %9s %9s %6d\n", name, "n/a", "n/a", "n/a", "n/a", 0)
			return
		}
		fmt.Fprintf(w, "  %-32s %7dms %7dms %7dms %7dms %6d\n", name, d.P50, d.P95, d.P99, d.Max, d.Count)
	}
	row("time to disable (entitlement)", r.TimeToDisable)
	row("time to revoke device sessions", r.TimeToSession)
	row("time to confirm, per lock", r.LockConfirm)
	row("time to confirm, per revocation", r.TimeToConfirm)
	pct := 0.0
	if r.Locks > 0 {
		pct = 100 * float64(r.Confirmed) / float64(r.Locks)
	}
	fmt.Fprintf(w, "  locks confirmed: %d of %d (%.1f %%)", r.Confirmed, r.Locks, pct)
	if r.Failed > 0 {
		fmt.Fprintf(w, ", %d given up", r.Failed)
	}
	fmt.Fprintln(w)
	s := r.Sessions
	fmt.Fprintf(w, "  device sessions: %s (done %d, failed %d, pending %d, not configured %d)", s.State, s.Done, s.Failed,
		s.Pending, s.NotConfigured)
	if s.Why != "" {
		fmt.Fprintf(w, ": %s", s.Why)
	}
	fmt.Fprintln(w)
	if r.NotHeld > 0 {
		fmt.Fprintf(w, "  credentials not yet on all their locks when revoked (revocations queued behind grants): %d\n", r.NotHeld)
	}
	if r.AttestationRefused > 0 {
		fmt.Fprintf(w, "  attestations refused (forged or wrong evidence, asked again): %d\n", r.AttestationRefused)
	}
	if r.KeptExpected > 0 {
		fmt.Fprintf(w, "  credentials on the devices not lost still active: %d of %d\n", r.KeptActive, r.KeptExpected)
	}
	switch t := r.Ticket; {
	case t == nil:
		fmt.Fprintln(w, "  incident ticket: no ticket system configured (--ticket-url)")
	case t.Error != "":
		fmt.Fprintf(w, "  incident ticket: %s\n", t.Error)
	case t.ClosedMs == 0:
		fmt.Fprintf(w, "  incident ticket %s: still open (not every layer confirmed)\n", t.ID)
	default:
		fmt.Fprintf(w, "  incident ticket %s closed %s after the revocation request\n", t.ID,
			(time.Duration(t.TimeToCloseMs) * time.Millisecond).Round(time.Millisecond))
	}
	if len(r.Stragglers) == 0 {
		fmt.Fprintln(w, "  stragglers: none")
	} else {
		fmt.Fprintf(w, "  stragglers (%d locks, oldest first):\n", len(r.Stragglers))
		for i, s := range r.Stragglers {
			if i == 20 {
				fmt.Fprintf(w, "    ... %d more (see --json)\n", len(r.Stragglers)-20)
				break
			}
			state := fmt.Sprintf("pending %s, sent %d×", (time.Duration(s.AgeMs) * time.Millisecond).Round(time.Millisecond), s.Attempts)
			if s.Failed {
				state = "given up: " + s.Error
			}
			fmt.Fprintf(w, "    %s/%s  %s  (revocation %s, subject %s)\n", s.Vendor, s.LockID, state, s.RevocationID, s.Subject)
		}
	}
	stored := "stored: GET /v1/drills?run_id=" + r.RunID
	if !r.Stored {
		stored = "not stored"
	}
	fmt.Fprintf(w, "  drill took %s; %s\n", r.Elapsed.Round(time.Millisecond), stored)
}
