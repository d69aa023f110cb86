package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

const tokenUsage = `Usage: keyfleet token <create|list|rotate|revoke> [flags]

  keyfleet token create --name NAME --role ROLE [--expires-at RFC3339 | --expires-in 90d] [--sites S1,S2]
                                                  mint a token (--sites: limited to those sites;
                                                  analyst, responder, manager); its secret is printed once
  keyfleet token list                             list tokens (never their secrets)
  keyfleet token rotate TOKEN_ID                  a new secret: a token of the same name, role
                                                  and expiry, the old one revoked
  keyfleet token revoke TOKEN_ID                  revoke a token (final, restarts included)

Talks to ClickHouse directly (the same --clickhouse-* flags and KEYFLEET_CLICKHOUSE_*
variables as serve), so an operator can mint a token before the service runs. Every
change is audited first; with --audit-key or --audit-key-file (as serve's) the entries
are keyed, otherwise they are unkeyed and audit verify says so.
Roles: admin, manager, responder, analyst, ingest, scim, auditor.`

// runToken manages API tokens.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, tokenUsage)
		if len(args) == 0 {
			return usageError{errors.New("a subcommand is required: create, list or revoke")}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var ch chstorage.Config
	var name, role, output, expiresAt, expiresIn, auditKey, auditKeyFile string
	var sites []string
	fs := flagenv.New("token "+sub, tokenUsage)
	fs.FlagSet().SetOutput(stderr)
	ch.RegisterFlags(fs)
	fs.String(&output, "output", "KEYFLEET_TOKEN_OUTPUT", "text", "text or json")
	fs.Secret(&auditKey, "audit-key", "KEYFLEET_AUDIT_KEY", "the audit key (as serve's --audit-key): keys the audit entries")
	fs.String(&auditKeyFile, "audit-key-file", "KEYFLEET_AUDIT_KEY_FILE", "", "the audit key file (as serve's --audit-key-file)")
	switch sub {
	case "create":
		fs.String(&name, "name", "", "", "a label for the token (what or who uses it)")
		fs.String(&role, "role", "", "", "admin, manager, responder, analyst, ingest, scim or auditor")
		fs.String(&expiresAt, "expires-at", "", "", "when the token stops working (RFC 3339); default: never")
		fs.String(&expiresIn, "expires-in", "", "", "or how long from now it works (90d, 12h)")
		fs.List(&sites, "sites", "", nil, "limit the token to these sites (comma-separated; analyst, responder or manager)")
	case "list", "revoke", "rotate":
	default:
		return usageError{fmt.Errorf("unknown subcommand %q (want create, list, rotate or revoke)", sub)}
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if output != "text" && output != "json" {
		return usageError{fmt.Errorf("--output %q: want text or json", output)}
	}
	if err := ch.Validate(); err != nil {
		return usageError{fmt.Errorf("--clickhouse-addr/--clickhouse-database: %w", err)}
	}
	rest := fs.Args()
	switch sub {
	case "create":
		if name == "" || !httpapi.ValidRole(httpapi.Role(role)) || len(rest) > 0 {
			return usageError{errors.New("create needs --name and --role (admin, manager, responder, analyst, ingest, scim or auditor)")}
		}
	case "list":
		if len(rest) > 0 {
			return usageError{errors.New("list takes no arguments")}
		}
	case "revoke", "rotate":
		if len(rest) != 1 {
			return usageError{fmt.Errorf("%s needs one token id (see keyfleet token list)", sub)}
		}
	}
	var expiresMs int64
	switch {
	case expiresAt != "" && expiresIn != "":
		return usageError{errors.New("--expires-at and --expires-in: give one")}
	case expiresAt != "":
		t, err := time.Parse(time.RFC3339, expiresAt)
		if err != nil {
			return usageError{fmt.Errorf("--expires-at %q: want RFC 3339 (2027-01-01T00:00:00Z)", expiresAt)}
		}
		expiresMs = t.UnixMilli()
	case expiresIn != "":
		d, err := openapi.ParseDuration(expiresIn)
		if err != nil || d <= 0 {
			return usageError{fmt.Errorf("--expires-in %q: want a positive duration (90d, 12h)", expiresIn)}
		}
		expiresMs = time.Now().Add(d).UnixMilli()
	}
	var keys *audit.Keyring
	var err error
	switch {
	case auditKey != "" && auditKeyFile != "":
		return usageError{errors.New("--audit-key and --audit-key-file: give one")}
	case auditKey != "":
		keys, err = audit.KeyringFromSecret(auditKey)
	case auditKeyFile != "":
		keys, err = audit.LoadKeyFile(auditKeyFile)
	}
	if err != nil {
		return usageError{err}
	}

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := chstorage.Open(ctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := chstorage.Migrate(ctx, conn, logger); err != nil {
		return err
	}
	store := auth.NewStore(conn, logger)
	if err := store.Load(ctx); err != nil {
		return err
	}
	if keys == nil && sub != "list" {
		fmt.Fprintln(stderr, "keyfleet token: no --audit-key: this change is audited unkeyed")
	}
	record := func(action, id string, details map[string]string) error {
		return recordTokenChange(ctx, conn, logger, keys, action, id, details)
	}
	switch sub {
	case "create":
		if expiresMs != 0 && expiresMs <= time.Now().UnixMilli() {
			return usageError{errors.New("the expiry must be in the future")}
		}
		secret, err := auth.NewSecret()
		if err != nil {
			return err
		}
		if err := auth.CheckSites(httpapi.Role(role), sites); err != nil {
			return usageError{fmt.Errorf("--sites: %w", err)}
		}
		details := map[string]string{"role": role, "name": name}
		if len(sites) > 0 {
			details["sites"] = strings.Join(sites, ",")
		}
		if expiresMs != 0 {
			details["expires_at"] = time.UnixMilli(expiresMs).UTC().Format(time.RFC3339)
		}
		if err := record("token.create", auth.IDOf(secret), details); err != nil {
			return err
		}
		t, err := store.Put(ctx, auth.Spec{Name: name, Role: httpapi.Role(role), ExpiresMs: expiresMs, Sites: sites}, secret)
		if err != nil {
			return err
		}
		if output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]any{"token": t, "secret": secret})
		}
		fmt.Fprintf(stdout, "created token %s (%s, role %s); its secret is shown once:\n%s\n", t.ID, t.Name, t.Role, secret)
	case "list":
		tokens := store.List()
		if output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]any{"tokens": tokens})
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, msTime(t.CreatedMs), msTime(t.LastUsedMs),
				msTime(t.ExpiresMs), msTime(t.RevokedMs))
		}
		return tw.Flush()
	case "rotate":
		id := strings.TrimSpace(rest[0])
		old, ok := store.Get(id)
		if !ok {
			return fmt.Errorf("no token has id %q", id)
		}
		if !old.Active(time.Now().UnixMilli()) {
			return fmt.Errorf("token %s is revoked or expired; create a new one instead", id)
		}
		secret, err := auth.NewSecret()
		if err != nil {
			return err
		}
		if err := record("token.rotate", auth.IDOf(secret), map[string]string{"rotated_from": id,
			"role": string(old.Role), "name": old.Name}); err != nil {
			return err
		}
		t, err := store.Rotate(ctx, id, secret)
		if err != nil {
			return err
		}
		if output == "json" {
			return json.NewEncoder(stdout).Encode(map[string]any{"token": t, "secret": secret, "rotated_from": id})
		}
		fmt.Fprintf(stdout, "rotated token %s (%s): it is revoked; its successor %s's secret is shown once:\n%s\n", id, t.Name, t.ID, secret)
	case "revoke":
		id := strings.TrimSpace(rest[0])
		t, ok := store.Get(id)
		if !ok {
			return fmt.Errorf("no token has id %q", id)
		}
		if t.RevokedMs == 0 {
			if err := record("token.revoke", id, map[string]string{"role": string(t.Role), "name": t.Name}); err != nil {
				return err
			}
		}
		t, err := store.Revoke(ctx, id)
		if errors.Is(err, auth.ErrNotFound) {
			return fmt.Errorf("no token has id %q", id)
		}
		if err != nil {
			return err
		}
		if output == "json" {
			return json.NewEncoder(stdout).Encode(t)
		}
		fmt.Fprintf(stdout, "revoked token %s (%s); running servers stop accepting it within seconds\n", t.ID, t.Name)
	}
	return nil
}

// recordTokenChange writes a token change to the audit log before it is
// made, as the API does: on its own chain (one per CLI run), with the
// operating-system account that ran the command as the actor.
func recordTokenChange(ctx context.Context, conn driver.Conn, logger *slog.Logger, keys *audit.Keyring, action, id string, details map[string]string) error {
	store, err := audit.NewStore(conn, audit.Options{Logger: logger, Keys: keys})
	if err != nil {
		return err
	}
	details["via"] = "keyfleet token"
	actor := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = "cli:" + u.Username
	}
	if err := store.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: id, Details: details}); err != nil {
		return fmt.Errorf("the audit log could not record this change, so it was not made: %w", err)
	}
	return nil
}

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
