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
)

const tokenUsage = `Usage: keyfleet token <create|list|revoke> [flags]

  keyfleet token create --name NAME --role ROLE   mint a token; its secret is printed once
  keyfleet token list                             list tokens (never their secrets)
  keyfleet token revoke TOKEN_ID                  revoke a token

Talks to ClickHouse directly (the same --clickhouse-* flags and KEYFLEET_CLICKHOUSE_*
variables as serve), so an operator can mint a token before the service runs.
Roles: admin, manager, responder, analyst, ingest.`

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
	var name, role, output string
	fs := flagenv.New("token "+sub, tokenUsage)
	fs.FlagSet().SetOutput(stderr)
	ch.RegisterFlags(fs)
	fs.String(&output, "output", "KEYFLEET_TOKEN_OUTPUT", "text", "text or json")
	switch sub {
	case "create":
		fs.String(&name, "name", "", "", "a label for the token (what or who uses it)")
		fs.String(&role, "role", "", "", "admin, manager, responder, analyst, ingest or scim")
	case "list", "revoke":
	default:
		return usageError{fmt.Errorf("unknown subcommand %q (want create, list or revoke)", sub)}
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
			return usageError{errors.New("create needs --name and --role (admin, manager, responder, analyst, ingest or scim)")}
		}
	case "list":
		if len(rest) > 0 {
			return usageError{errors.New("list takes no arguments")}
		}
	case "revoke":
		if len(rest) != 1 {
			return usageError{errors.New("revoke needs one token id (see keyfleet token list)")}
		}
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
	switch sub {
	case "create":
		secret, err := auth.NewSecret()
		if err != nil {
			return err
		}
		if err := recordTokenChange(ctx, conn, logger, "token.create", auth.IDOf(secret), httpapi.Role(role)); err != nil {
			return err
		}
		t, err := store.CreateWithSecret(ctx, name, httpapi.Role(role), secret)
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
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, msTime(t.CreatedMs), msTime(t.LastUsedMs), msTime(t.RevokedMs))
		}
		return tw.Flush()
	case "revoke":
		id := strings.TrimSpace(rest[0])
		t, ok := store.Get(id)
		if !ok {
			return fmt.Errorf("no token has id %q", id)
		}
		if t.RevokedMs == 0 {
			if err := recordTokenChange(ctx, conn, logger, "token.revoke", id, t.Role); err != nil {
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
func recordTokenChange(ctx context.Context, conn driver.Conn, logger *slog.Logger, action, id string, role httpapi.Role) error {
	store, err := audit.NewStore(conn, audit.Options{Logger: logger})
	if err != nil {
		return err
	}
	actor := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = "cli:" + u.Username
	}
	if err := store.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: id,
		Details: map[string]string{"role": string(role), "via": "keyfleet token"}}); err != nil {
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
