package main

import (
	"bytes"
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
	"text/tabwriter"
	"time"

	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

const identityAbout = `Identity sync from the command line.

  keyfleet identity import FILE [flags]   import an HR/tenant feed (CSV or JSON people) into a
                                          running keyfleet: the difference with its identities
                                          becomes joiners, movers and leavers

--dry-run prints the difference without changing anything. CSV columns (header
line, any order): external_id (required), user_name, given_name, family_name,
display_name, email, active, end_date, site, groups (;-separated), subject_id.
JSON: an array of objects with the same keys. --mode full (default) deactivates
the feed's people the file no longer lists; delta changes only the rows given.`

// runIdentity implements `keyfleet identity import FILE`: a client of POST
// /v1/identity/import that prints the plan (or the outcome) as a table.
func runIdentity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, identityAbout)
		return usageError{errors.New("want the subcommand import")}
	}
	var base, token, mode, source, format string
	var dry, asJSON bool
	var timeout time.Duration
	fs := flagenv.New("identity import", identityAbout)
	fs.FlagSet().SetOutput(stderr)
	fs.String(&base, "url", "KEYFLEET_URL", "http://127.0.0.1:8080", "keyfleet API base URL")
	fs.Secret(&token, "token", "KEYFLEET_TOKEN", "API token with the scim (or admin) role")
	fs.Bool(&dry, "dry-run", "KEYFLEET_IDENTITY_DRY_RUN", false, "print the difference; change nothing")
	fs.String(&mode, "mode", "KEYFLEET_IDENTITY_MODE", feed.ModeFull,
		"full: the file lists everyone the feed manages (the others are deactivated); delta: only these rows change")
	fs.String(&source, "source", "KEYFLEET_IDENTITY_SOURCE", "hr", "name of the feed; it owns the people it creates")
	fs.String(&format, "format", "KEYFLEET_IDENTITY_FORMAT", "", "csv or json (default: by the file name, else by its content)")
	fs.Duration(&timeout, "timeout", "KEYFLEET_IDENTITY_TIMEOUT", 10*time.Minute, "how long the import may take")
	fs.Bool(&asJSON, "json", "KEYFLEET_IDENTITY_JSON", false, "print the plan as JSON")
	// The file may come before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return usageErr(err)
	}
	if file == "" && len(fs.Args()) == 1 {
		file = fs.Args()[0]
	} else if len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Args()[0])}
	}
	if file == "" {
		return usageError{errors.New("name the feed file (CSV or JSON; - for stdin)")}
	}
	if token == "" {
		return usageError{errors.New("--token (KEYFLEET_TOKEN) is required")}
	}
	if mode != feed.ModeFull && mode != feed.ModeDelta {
		return usageError{fmt.Errorf("--mode %q: want full or delta", mode)}
	}
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
		if format == "" {
			switch strings.ToLower(filepath.Ext(file)) {
			case ".csv":
				format = feed.FormatCSV
			case ".json":
				format = feed.FormatJSON
			}
		}
	}
	if err != nil {
		return usageError{err}
	}
	// Refuse a malformed file here, with its row, before sending it.
	if _, err := feed.Parse(data, format); err != nil {
		return usageError{fmt.Errorf("%s: %w", file, err)}
	}
	q := url.Values{"mode": {mode}, "source": {source}, "dry_run": {fmt.Sprint(dry)}}
	if format != "" {
		q.Set("format", format)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+feed.PathImport+"?"+q.Encode(),
		bytes.NewReader(data))
	if err != nil {
		return usageError{err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	ctype := "text/csv"
	if format == feed.FormatJSON || (format == "" && bytes.HasPrefix(bytes.TrimSpace(data), []byte("["))) {
		ctype = "application/json"
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("import: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var plan feed.Plan
	if err := json.Unmarshal(body, &plan); err != nil {
		return fmt.Errorf("import: decode the answer: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	printPlan(stdout, &plan)
	if plan.Failed > 0 {
		return fmt.Errorf("%d writes failed (see the table)", plan.Failed)
	}
	return nil
}

func printPlan(w io.Writer, p *feed.Plan) {
	what := "applied"
	if p.DryRun {
		what = "dry run: nothing changed"
	}
	fmt.Fprintf(w, "feed %s (%s), %d people in the file — %s\n", p.Source, p.Mode, p.People, what)
	fmt.Fprintf(w, "joiners %d, movers %d, leavers %d, updated %d, unchanged or not entitled %d, conflicts %d\n\n",
		p.Counts["joined"], p.Counts["moved"], p.Counts["left"], p.Counts["updated"], p.Counts["none"], len(p.Conflicts))
	if len(p.Changes) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EXTERNAL ID\tSUBJECT\tOP\tCHANGE\tFIELDS\tGROUPS\tERROR")
		for _, c := range p.Changes {
			var groups []string
			for _, g := range c.GroupsAdded {
				groups = append(groups, "+"+g)
			}
			for _, g := range c.GroupsRemoved {
				groups = append(groups, "-"+g)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ExternalID, dash(c.SubjectID), c.Op, c.Kind,
				dash(strings.Join(c.Fields, ",")), dash(strings.Join(groups, " ")), c.Error)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	for _, g := range p.Groups {
		verb := "changes"
		if g.Create {
			verb = "is created"
		}
		fmt.Fprintf(w, "group %q %s: +%d -%d %s\n", g.Name, verb, g.Added, g.Removed, g.Error)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "conflict %s: %s\n", c.ExternalID, c.Reason)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
