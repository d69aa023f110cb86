package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/control/drill"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// runDrill implements `keyfleet drill revoke --subjects N`: the quarterly
// revocation drill (control/drill) against a running keyfleet.
func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(stderr, "Usage: keyfleet drill revoke --subjects N [flags]")
		return usageError{errors.New("want the subcommand revoke")}
	}
	var o drill.Options
	var groups string
	var asJSON bool
	fs := flagenv.New("drill revoke", "Revocation drill against a running keyfleet: issue test credentials to N subjects across the\n"+
		"estate, revoke them all at once, report time to disable, time to confirm propagation and stragglers.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&o.URL, "url", "KEYFLEET_URL", "http://127.0.0.1:8080", "keyfleet API base URL")
	fs.Secret(&o.Token, "token", "KEYFLEET_TOKEN", "API token with the manager (or admin) role")
	fs.Secret(&o.ApproverToken, "approver-token", "KEYFLEET_DRILL_APPROVER_TOKEN",
		"a second manager's token, to approve drill credentials whose door groups go beyond the role template")
	fs.Int(&o.Subjects, "subjects", "KEYFLEET_DRILL_SUBJECTS", 10, "number of drill subjects (one credential each)")
	fs.String(&o.Role, "role", "KEYFLEET_DRILL_ROLE", "resident", "role template of the drill credentials")
	fs.String(&groups, "door-groups", "KEYFLEET_DRILL_DOOR_GROUPS", "",
		"comma-separated door groups added to the role template's (default: every group of the estate the template allows\n"+
			"        without an exception, e.g. unit:* for residents)")
	fs.String(&o.Site, "site", "KEYFLEET_DRILL_SITE", "", "site of the drill credentials (empty: every site)")
	fs.Duration(&o.Timeout, "timeout", "KEYFLEET_DRILL_TIMEOUT", 2*time.Minute,
		"how long to wait for every lock to confirm before reporting stragglers (waiting for the drill credentials to be issued may take up to 1m)")
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
	fmt.Fprintf(w, "revocation drill %s: %d subjects, %d credentials, %d lock revocations (door groups %s)\n",
		r.RunID, r.Subjects, r.Credentials, r.Locks, strings.Join(r.DoorGroups, ","))
	fmt.Fprintf(w, "  %-26s %8s %8s %8s %8s %6s\n", "", "p50", "p95", "p99", "max", "n")
	row := func(name string, d drill.Distribution) {
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
