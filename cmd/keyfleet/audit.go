package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

const auditUsage = `Usage: keyfleet audit <verify|checkpoint> [flags]

  keyfleet audit verify       check every chain of the admin audit log: each entry's MAC (keyed
                              entries; old unkeyed ones are checked and counted as unkeyed), the
                              links, the anchors between chains, and the signed checkpoints (from
                              the audit.checkpoints topic with --kafka-brokers, --audit-checkpoint-file,
                              and --checkpoint FILE). Exits 1 and names the first altered, re-hashed,
                              removed or truncated entry when verification fails.
  keyfleet audit checkpoint   verify, then print a signed checkpoint of every chain's head (JSON
                              lines) to keep outside ClickHouse; --publish also writes them to the
                              anchors. Refuses (exit 1) when the log does not verify.

Reads ClickHouse directly (works while keyfleet is down); verify can also go through a running
keyfleet (--url, --token: GET /v1/audit/verify). The key comes from --audit-key or --audit-key-file
(KEYFLEET_AUDIT_KEY, KEYFLEET_AUDIT_KEY_FILE, as for serve); without it, verify checks links and
checkpoints but not MACs or signatures.`

// runAudit implements `keyfleet audit verify|checkpoint`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "checkpoint") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stderr, auditUsage)
			return nil
		}
		fmt.Fprintln(stderr, auditUsage)
		return usageError{errors.New("want the subcommand verify or checkpoint")}
	}
	sub := args[0]
	var ch chstorage.Config
	var kafkaSec bus.SecurityFlags
	var url, token, key, keyFile, cpFile, extraFile, prefix string
	var brokers []string
	var asJSON, publish bool
	fs := flagenv.New("audit "+sub, auditUsage)
	fs.FlagSet().SetOutput(stderr)
	ch.RegisterFlags(fs)
	fs.Secret(&key, "audit-key", "KEYFLEET_AUDIT_KEY", "the audit key (as serve's --audit-key)")
	fs.String(&keyFile, "audit-key-file", "KEYFLEET_AUDIT_KEY_FILE", "", "the audit key file (as serve's --audit-key-file)")
	fs.List(&brokers, "kafka-brokers", "KEYFLEET_KAFKA_BROKERS", nil, "read the checkpoints on the audit.checkpoints topic of these brokers")
	fs.String(&prefix, "topic-prefix", "KEYFLEET_TOPIC_PREFIX", "", "serve's --topic-prefix")
	kafkaSec.RegisterFlags(fs)
	fs.String(&cpFile, "audit-checkpoint-file", "KEYFLEET_AUDIT_CHECKPOINT_FILE", "", "serve's checkpoint file")
	fs.String(&extraFile, "checkpoint", "", "", "checkpoints exported earlier by keyfleet audit checkpoint (JSON lines)")
	if sub == "verify" {
		fs.String(&url, "url", "KEYFLEET_URL", "", "verify through a running keyfleet's API instead (e.g. http://127.0.0.1:8080)")
		fs.Secret(&token, "token", "KEYFLEET_TOKEN", "admin API token (with --url)")
	} else {
		fs.Bool(&publish, "publish", "", false, "also write the checkpoints to the anchors (the topic, the checkpoint file)")
	}
	fs.Bool(&asJSON, "json", "KEYFLEET_AUDIT_JSON", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	if url != "" {
		rep, err := verifyOverHTTP(ctx, url, token)
		if err != nil {
			return err
		}
		return printReport(stdout, rep, asJSON)
	}
	if err := ch.Validate(); err != nil {
		return usageError{err}
	}
	var keys *audit.Keyring
	var err error
	switch {
	case key != "" && keyFile != "":
		return usageError{errors.New("--audit-key and --audit-key-file: give one")}
	case key != "":
		keys, err = audit.KeyringFromSecret(key)
	case keyFile != "":
		keys, err = audit.LoadKeyFile(keyFile)
	case sub == "checkpoint":
		return usageError{errors.New("checkpoint signs with the audit key: give --audit-key or --audit-key-file")}
	}
	if err != nil {
		return usageError{err}
	}
	var extra []audit.Checkpoint
	if extraFile != "" {
		f, err := os.Open(extraFile)
		if err != nil {
			return usageError{err}
		}
		extra, err = audit.ReadCheckpoints(f, extraFile)
		f.Close()
		if err != nil {
			return err
		}
	}
	var anchors []audit.Anchor
	if len(brokers) > 0 {
		sec, err := kafkaSec.Build()
		if err != nil {
			return usageError{err}
		}
		bc := bus.Config{Brokers: brokers, TopicPrefix: prefix, Partitions: 1, Security: sec}
		if err := bc.Validate(); err != nil {
			return usageError{fmt.Errorf("--kafka-brokers: %w", err)}
		}
		ka := audit.NewKafkaAnchor(bc)
		defer ka.Close()
		anchors = append(anchors, ka)
	}
	if cpFile != "" {
		anchors = append(anchors, audit.NewFileAnchor(cpFile))
	}

	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := chstorage.Open(cctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A verifying store never appends, so its chain name is never written.
	s, err := audit.NewStore(conn, audit.Options{Chain: "verify-cli", Keys: keys, Anchors: anchors,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	if sub == "checkpoint" {
		cps, rep, err := s.Checkpoint(cctx, extra, publish)
		if errors.Is(err, audit.ErrNotVerified) {
			_ = printReport(stderr, rep, false)
			return fmt.Errorf("not signing a checkpoint: %w (first %s entry is %s seq %d)", err, rep.First.Kind, rep.First.Chain, rep.First.Seq)
		}
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, c := range cps {
			if err := enc.Encode(c); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "signed checkpoints of %d chains (%d entries verified); keep them where ClickHouse writers cannot reach, and verify with --checkpoint FILE\n",
			len(cps), rep.Entries)
		return nil
	}
	rep, err := s.VerifyWith(cctx, extra)
	if err != nil {
		return err
	}
	return printReport(stdout, rep, asJSON)
}

func printReport(w io.Writer, rep *audit.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "audit log: %d entries in %d chains, %d checkpoints compared\n", rep.Entries, len(rep.Chains), rep.Checkpoints)
		for _, c := range rep.Chains {
			status := "ok"
			if !c.OK {
				status = "FAILED"
			}
			note := ""
			if c.Unkeyed > 0 {
				note = fmt.Sprintf("  (%d unkeyed)", c.Unkeyed)
			}
			fmt.Fprintf(w, "  %-40s %6d entries  head %-6d checkpoint %-6d %s%s\n", c.Chain, c.Entries, c.HeadSeq, c.CheckpointSeq, status, note)
		}
		for _, f := range rep.Findings {
			fmt.Fprintf(w, "  %s seq %d: %s — %s\n", f.Chain, f.Seq, f.Kind, f.Detail)
		}
		switch {
		case !rep.KeysChecked:
			fmt.Fprintln(w, "note: no audit key given: links and checkpoints were checked, MACs and checkpoint signatures were not")
		case rep.Unkeyed > 0:
			fmt.Fprintf(w, "note: %d entries are unkeyed (written before the log was keyed): their SHA-256 holds, but anyone who could write to ClickHouse could have forged them\n", rep.Unkeyed)
		}
	}
	if !rep.OK {
		return fmt.Errorf("verification failed: first %s entry is %s seq %d (%s)", rep.First.Kind, rep.First.Chain, rep.First.Seq, rep.First.Detail)
	}
	if !asJSON {
		fmt.Fprintln(w, "verified: no entry altered, re-hashed, removed or truncated")
	}
	return nil
}

func verifyOverHTTP(ctx context.Context, base, token string) (*audit.Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/audit/verify", nil)
	if err != nil {
		return nil, usageError{err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("audit verify: %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var rep audit.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	return &rep, nil
}
