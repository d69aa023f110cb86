package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

const estateUsage = "Usage: keyfleet estate migrate|import|export|weak-links [flags]"

// runEstate implements `keyfleet estate …`: the lock estate through a
// running keyfleet's API (vendor migration, registry import and export,
// the weak links).
func runEstate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, estateUsage)
		return usageError{errors.New("want a subcommand: migrate, import, export or weak-links")}
	}
	switch args[0] {
	case "migrate":
		return runEstateMigrate(ctx, args[1:], stdout, stderr)
	case "import":
		return runEstateImport(ctx, args[1:], stdout, stderr)
	case "export":
		return runEstateExport(ctx, args[1:], stdout, stderr)
	case "weak-links":
		return runEstateWeakLinks(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, estateUsage)
	return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
}

// clientFlags adds --url and --token.
func clientFlags(fs *flagenv.Set, c *migrate.Client, role string) {
	fs.String(&c.URL, "url", "KEYFLEET_URL", "http://127.0.0.1:8080", "keyfleet API base URL")
	fs.Secret(&c.Token, "token", "KEYFLEET_TOKEN", "API token with the "+role+" role")
}

func needToken(c *migrate.Client) error {
	if c.Token == "" {
		return usageError{errors.New("--token (KEYFLEET_TOKEN) is required")}
	}
	return nil
}

func runEstateMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c migrate.Client
	var req migrate.Request
	var locksFile string
	var dry, asJSON bool
	var wait time.Duration
	fs := flagenv.New("estate migrate", "Vendor exit: replace the locks of one vendor by locks of another, door by door. Every credential on an\n"+
		"old lock is granted on its new lock and dropped from the old one through the control plane; each lock\n"+
		"confirms like in a revocation. The locks file maps old lock ids to new ones: CSV with a header of\n"+
		strings.Join(migrate.LockColumns, ",")+" (or a JSON array of {from_lock_id, to_lock_id, model, firmware, tier}).")
	fs.FlagSet().SetOutput(stderr)
	clientFlags(fs, &c, "admin")
	fs.String(&req.FromVendor, "from-vendor", "", "", "vendor of the locks being replaced")
	fs.String(&req.ToVendor, "to-vendor", "", "", "vendor of the new locks")
	fs.String(&locksFile, "locks", "", "", "locks file (CSV or JSON)")
	fs.String(&req.Reason, "reason", "", "", "why (audited)")
	fs.Bool(&dry, "dry-run", "", false, "show the plan and the credentials it would move; change nothing")
	fs.Duration(&wait, "wait", "", 10*time.Minute, "how long to wait for every lock to confirm before reporting stragglers (0: do not wait)")
	fs.Bool(&asJSON, "json", "", false, "print the final status as JSON")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := needToken(&c); err != nil {
		return err
	}
	if req.FromVendor == "" || req.ToVendor == "" || locksFile == "" {
		return usageError{errors.New("--from-vendor, --to-vendor and --locks are required")}
	}
	data, err := os.ReadFile(locksFile)
	if err != nil {
		return usageError{fmt.Errorf("--locks: %w", err)}
	}
	if req.Locks, err = migrate.ParseLocks(data); err != nil {
		return usageError{fmt.Errorf("--locks: %w", err)}
	}
	started, err := c.Start(ctx, req, dry)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s → %s: %d locks, %d credentials to move (%d suspended: moved when reinstated)\n",
		req.FromVendor, req.ToVendor, len(started.Plan.New), started.Credentials, started.Deferred)
	for _, l := range started.WeakLinks {
		fmt.Fprintf(stderr, "  warning: new lock %s/%s on %s/%s (tier %d) is a weak link: %s\n", l.Lock.Vendor, l.Lock.LockID,
			l.Lock.SiteID, l.Lock.DoorID, l.Lock.Tier, gapList(l.Gaps))
	}
	if dry {
		return printJSON(stdout, started)
	}
	fmt.Fprintf(stderr, "migration %s started (%s)\n", started.MigrationID, started.StatusURL)
	var st *migrate.Status
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		st, err = c.Wait(wctx, started.MigrationID, time.Second, func(s *migrate.Status) {
			fmt.Fprintf(stderr, "  %d of %d credentials moved and confirmed, %d lock commands pending\n", s.Moved, s.Total, len(s.Stragglers))
		})
		if st == nil && wctx.Err() != nil { // the wait ended before the first answer
			st, err = c.Status(ctx, started.MigrationID)
		}
		cancel()
	} else {
		st, err = c.Status(ctx, started.MigrationID)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, st)
	}
	printMigration(stdout, st)
	if st.Status != migrate.StatusConfirmed && wait > 0 {
		return fmt.Errorf("migration %s not confirmed after %s: %d lock commands pending", st.MigrationID, wait, len(st.Stragglers))
	}
	return nil
}

func gapList(gaps []estate.Gap) string {
	parts := make([]string, len(gaps))
	for i, g := range gaps {
		parts[i] = g.Capability + " (" + g.Severity.String() + ")"
	}
	return strings.Join(parts, ", ")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printMigration writes a migration's status as text.
func printMigration(w io.Writer, st *migrate.Status) {
	fmt.Fprintf(w, "vendor migration %s: %s → %s, %s\n", st.MigrationID, st.FromVendor, st.ToVendor, st.Status)
	fmt.Fprintf(w, "  credentials moved and confirmed: %d of %d (%d suspended, moved when reinstated)\n", st.Moved, st.Total, st.Deferred)
	fmt.Fprintf(w, "  %-40s %-40s %6s %8s %8s  %s\n", "old lock", "new lock", "creds", "granted", "revoked", "status")
	for _, l := range st.Locks {
		fmt.Fprintf(w, "  %-40s %-40s %6d %8d %8d  %s\n", l.From.String(), l.To.String(), l.Credentials, l.Granted, l.Revoked, l.Status)
	}
	if len(st.Stragglers) == 0 {
		fmt.Fprintln(w, "  stragglers: none")
	} else {
		fmt.Fprintf(w, "  stragglers (%d lock commands):\n", len(st.Stragglers))
		for i, s := range st.Stragglers {
			if i == 20 {
				fmt.Fprintf(w, "    ... %d more (see --json)\n", len(st.Stragglers)-20)
				break
			}
			over := ""
			if s.Overdue {
				over = ", past the SLA"
			}
			fmt.Fprintf(w, "    %s on %s/%s pending %s%s (credential %s)\n", s.Command, s.Vendor, s.LockID,
				(time.Duration(s.AgeMs) * time.Millisecond).Round(time.Second), over, s.CredentialID)
		}
	}
	if st.TimeToConfirmMs > 0 {
		fmt.Fprintf(w, "  time to confirm: %s\n", (time.Duration(st.TimeToConfirmMs) * time.Millisecond).Round(time.Millisecond))
	}
}

func runEstateImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c migrate.Client
	var format string
	fs := flagenv.New("estate import", "Bulk import locks into the lock registry (keyfleet estate import FILE): CSV with a header of\n"+
		"vendor,lock_id,site_id,zone_id,door_id,groups,model,firmware,tier[,retired] or a JSON array of locks. Every row is\n"+
		"checked first; nothing is imported if one is refused.")
	fs.FlagSet().SetOutput(stderr)
	clientFlags(fs, &c, "admin")
	fs.String(&format, "format", "", "", "csv or json (default: from the file name)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := needToken(&c); err != nil {
		return err
	}
	if fs.FlagSet().NArg() != 1 {
		return usageError{errors.New("want one file")}
	}
	path := fs.FlagSet().Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return usageError{err}
	}
	if format == "" {
		format = strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	}
	ctype := map[string]string{"csv": "text/csv", "json": "application/json"}[format]
	if ctype == "" {
		return usageError{fmt.Errorf("--format %q: want csv or json", format)}
	}
	var res map[string]int
	if err := c.Do(ctx, http.MethodPost, "/v1/locks:import", ctype, data, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d rows: %d created, %d updated, %d retired, %d unchanged\n", res["rows"], res["created"],
		res["updated"], res["retired"], res["unchanged"])
	return nil
}

func runEstateExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c migrate.Client
	var format, out string
	var retired bool
	fs := flagenv.New("estate export", "Export the lock registry (CSV or JSON; keyfleet estate import reads it back).")
	fs.FlagSet().SetOutput(stderr)
	clientFlags(fs, &c, "analyst (or higher)")
	fs.String(&format, "format", "", "csv", "csv or json")
	fs.Bool(&retired, "retired", "", false, "include retired locks")
	fs.String(&out, "out", "", "", "write to this file (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := needToken(&c); err != nil {
		return err
	}
	if format != "csv" && format != "json" {
		return usageError{fmt.Errorf("--format %q: want csv or json", format)}
	}
	var data []byte
	if err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/locks:export?format=%s&retired=%t", format, retired), "", nil, &data); err != nil {
		return err
	}
	if out == "" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

func runEstateWeakLinks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c migrate.Client
	var days, limit int
	var site string
	var plan, asJSON bool
	fs := flagenv.New("estate weak-links", "The weak links of the estate: doors whose tier demands more than their lock can do, ranked by\n"+
		"risk × traffic, with the upgrade that fixes each (--plan: critical doors first).")
	fs.FlagSet().SetOutput(stderr)
	clientFlags(fs, &c, "analyst (or higher)")
	fs.Int(&days, "days", "", 30, "days of door traffic to rank by")
	fs.Int(&limit, "limit", "", 50, "most weak links to list")
	fs.String(&site, "site", "", "", "one site (default: all)")
	fs.Bool(&plan, "plan", "", false, "order as the upgrade plan: critical doors first")
	fs.Bool(&asJSON, "json", "", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := needToken(&c); err != nil {
		return err
	}
	path := "/v1/estate/weak-links"
	if plan {
		path = "/v1/estate/plan"
	}
	path += fmt.Sprintf("?days=%d&limit=%d", days, limit)
	if site != "" {
		path += "&site=" + url.QueryEscape(site)
	}
	var rep estate.WeakLinkReport
	if err := c.Do(ctx, http.MethodGet, path, "", nil, &rep); err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "%d weak links among %d locks (%d without a recorded tier), traffic of the last %d days, by %s:\n",
		rep.Total, rep.Locks, rep.Unclassified, days, rep.Order)
	for i, l := range rep.WeakLinks {
		up := "no row of the matrix closes every gap"
		if l.Upgrade != nil {
			up = l.Upgrade.String()
		}
		fmt.Fprintf(stdout, "%3d. tier %d %s/%s  %s/%s (%s)  uses %d  risk %d\n     missing: %s\n     upgrade: %s\n", i+1, l.Lock.Tier,
			l.Lock.SiteID, l.Lock.DoorID, l.Lock.Vendor, l.Lock.LockID, l.Profile, l.Uses, l.Risk, gapList(l.Gaps), up)
	}
	return nil
}
